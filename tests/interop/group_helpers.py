"""Helpers for the consumer-group interop tests: a threaded confluent-kafka group consumer that
records what it was assigned, consumed and committed; producing numbered messages; and a raw
protocol client for the group APIs (non-flexible versions, hand-packed with struct)."""

import collections
import queue
import socket
import struct
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

# Brokers for group tests: the first rebalance of a new group starts at once.
GROUP_PROPS = {"group.initial.rebalance.delay.ms": "0"}


def wait_until(pred, timeout, what, step=0.05):
    """Polls pred() until it is truthy; fails with `what` (a string or a callable giving one)."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            msg = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {msg}")
        time.sleep(step)


def produce_numbered(bootstrap, topic, partitions, start, count, extra=None):
    """Messages start..start+count-1, value = str(i), to partition i % partitions. Returns
    {(partition, offset): i} from the delivery reports."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         **(extra or {})})
    acked, errors = {}, []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked[(msg.partition(), msg.offset())] = int(msg.value())

    for i in range(start, start + count):
        while True:
            try:
                producer.produce(topic, value=str(i).encode(), key=str(i).encode(),
                                 partition=i % partitions, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0, "messages undelivered after 60s"
    assert not errors, errors[:3]
    assert len(acked) == count
    return acked


def high_watermarks(bootstrap, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw-probe"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        c.close()


def committed_offsets(bootstrap, group, topic, partitions, timeout=15):
    """{partition: committed offset} through a consumer of `group` that never joins it
    (OffsetFetch only); -1001 = nothing committed."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=timeout)
        for tp in got:
            assert tp.error is None, f"committed() error on {tp}: {tp.error}"
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


class GroupConsumer:
    """A confluent-kafka group consumer driven by its own thread.

    It records every assignment callback, every consumed message (partition, offset, value) and
    commits after each processed batch according to `commit`: "sync" (commit(asynchronous=False)
    of the stored offsets), "async" (commit(asynchronous=True)), "offsets" (synchronous commit of
    the explicit next offsets of the batch) or None (no commits). A batch whose commit failed is
    kept in `failed_batches` (its messages may legitimately be read again)."""

    def __init__(self, bootstrap, group, topics, name, strategy="range", commit="sync",
                 extra=None, batch=500, delay=0.0):
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "partition.assignment.strategy": strategy,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500,
            "fetch.wait.max.ms": 100,
            "topic.metadata.refresh.interval.ms": 2000,
        }
        conf.update(extra or {})
        if commit == "async":
            conf["on_commit"] = self._on_commit
        self.name = name
        self.topics = topics
        self.commit_mode = commit
        self.batch = batch
        self.delay = delay  # seconds of "processing" per batch
        self.consumer = Consumer(conf)
        self.events = []  # ("assign" | "revoke" | "lost", [partitions], monotonic time)
        self.assignment = set()  # (topic, partition) owned now, as the callbacks tell
        self.consumed = []  # (topic, partition, offset, value)
        self.committed_ok = []  # [(topic, partition, next offset)] of successful commits
        self.failed_batches = []  # [[(topic, partition, offset)], error text]
        self.errors = []  # message errors other than partition EOF
        self.commit_callbacks = []  # (error, offsets) from async commits
        self.paused = threading.Event()
        self.stopping = threading.Event()
        self.last_batch_uncommitted = None  # set when stopped with uncommitted_last=True
        self._calls = queue.Queue()
        self._lock = threading.Lock()
        self._thread = None
        self._exc = None
        self._uncommitted_last = False
        self._closed = threading.Event()

    # --- callbacks (run in the worker thread, inside consume()) ---
    def _on_commit(self, err, offsets):
        self.commit_callbacks.append((err, [(tp.topic, tp.partition, tp.offset, tp.error)
                                            for tp in offsets]))

    def _on_assign(self, consumer, parts):
        with self._lock:
            self.events.append(("assign", sorted(tp.partition for tp in parts), time.monotonic()))
            self.assignment |= {(tp.topic, tp.partition) for tp in parts}

    def _on_revoke(self, consumer, parts):
        with self._lock:
            self.events.append(("revoke", sorted(tp.partition for tp in parts), time.monotonic()))
            self.assignment -= {(tp.topic, tp.partition) for tp in parts}

    def _on_lost(self, consumer, parts):
        with self._lock:
            self.events.append(("lost", sorted(tp.partition for tp in parts), time.monotonic()))
            self.assignment -= {(tp.topic, tp.partition) for tp in parts}

    # --- control from the test thread ---
    def start(self):
        self.consumer.subscribe(self.topics, on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def call(self, fn, timeout=30):
        """Runs fn(consumer) in the worker thread (librdkafka calls stay in one thread)."""
        box = queue.Queue()
        self._calls.put((fn, box))
        ok, val = box.get(timeout=timeout)
        if not ok:
            raise val
        return val

    def partitions(self):
        with self._lock:
            return {p for (_, p) in self.assignment}

    def assign_count(self):
        with self._lock:
            return sum(1 for e in self.events if e[0] == "assign")

    def values(self):
        return [v for (_, _, _, v) in self.consumed]

    def signal_stop(self, uncommitted_last=False):
        self._uncommitted_last = uncommitted_last
        self.stopping.set()

    def stop(self, uncommitted_last=False, timeout=30):
        """Stops the loop and closes the consumer (LeaveGroup unless static). With
        uncommitted_last, one more batch is consumed and deliberately not committed."""
        if not self.stopping.is_set():
            self.signal_stop(uncommitted_last)
        if self._thread is not None:
            self._thread.join(timeout)
            assert not self._thread.is_alive(), f"{self.name}: worker did not stop"
        if self._exc is not None:
            raise self._exc

    def check(self):
        if self._exc is not None:
            raise self._exc

    # --- the worker ---
    def _run(self):
        c = self.consumer
        try:
            while not self.stopping.is_set():
                self._serve_calls()
                if self.paused.is_set():
                    c.poll(0.05)  # keeps callbacks and heartbeats moving, messages stay queued
                    continue
                if self._process(c.consume(num_messages=self.batch, timeout=0.1), commit=True):
                    time.sleep(self.delay)
            if self._uncommitted_last:
                msgs = []
                deadline = time.monotonic() + 3
                while not msgs and time.monotonic() < deadline:
                    msgs = c.consume(num_messages=self.batch, timeout=0.2)
                self.last_batch_uncommitted = self._process(msgs, commit=False)
        except Exception as e:  # surfaced by check()/stop()
            self._exc = e
        finally:
            try:
                c.close()
            except Exception as e:
                self._exc = self._exc or e
            self._closed.set()
            self._fail_pending_calls()

    def _serve_calls(self):
        while True:
            try:
                fn, box = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                box.put((True, fn(self.consumer)))
            except Exception as e:
                box.put((False, e))

    def _fail_pending_calls(self):
        while True:
            try:
                _, box = self._calls.get_nowait()
            except queue.Empty:
                return
            box.put((False, RuntimeError(f"{self.name} is closed")))

    def _process(self, msgs, commit):
        batch = []
        nxt = {}
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != -191:  # _PARTITION_EOF
                    self.errors.append(str(err))
                continue
            rec = (m.topic(), m.partition(), m.offset(), int(m.value()))
            self.consumed.append(rec)
            batch.append(rec[:3])
            nxt[(m.topic(), m.partition())] = m.offset() + 1
        if not batch or not commit or self.commit_mode is None:
            return batch
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(nxt.items())]
        try:
            if self.commit_mode == "sync":
                res = self.consumer.commit(asynchronous=False)
            elif self.commit_mode == "async":
                self.consumer.commit(asynchronous=True)
                return batch
            else:
                res = self.consumer.commit(offsets=offsets, asynchronous=False)
            bad = [tp for tp in res or [] if tp.error is not None]
            if bad:
                self.failed_batches.append((batch, str(bad)))
            else:
                self.committed_ok.extend((tp.topic, tp.partition, tp.offset) for tp in offsets)
        except KafkaException as e:
            self.failed_batches.append((batch, str(e)))
        return batch


def partitions_of(records):
    by = collections.defaultdict(list)
    for t, p, o, *_ in records:
        by[(t, p)].append(o)
    return by


# --- raw protocol (request header v1, response header v0: non-flexible versions only) ---

def _str(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">h", len(b)) + b


def _bytes(b):
    return struct.pack(">i", len(b)) + b


class RawClient:
    """One TCP connection speaking non-flexible request versions."""

    def __init__(self, port, client_id="raw-group-test", timeout=15):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.client_id = client_id
        self.corr = 0

    def close(self):
        self.sock.close()

    def request(self, key, version, body):
        self.corr += 1
        hdr = struct.pack(">hhi", key, version, self.corr) + _str(self.client_id)
        frame = hdr + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", self._recv(4))[0]
        resp = self._recv(size)
        corr = struct.unpack(">i", resp[:4])[0]
        assert corr == self.corr, f"correlation id {corr}, expected {self.corr}"
        return Reader(resp[4:])

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"broker closed the connection ({len(buf)} of {n} bytes)")
            buf += chunk
        return buf

    # JoinGroup v5: (error, generation, protocol, leader, member_id, [(member, instance, meta)])
    def join_group(self, group, member_id="", protocol_meta=b"", instance_id=None,
                   session_ms=10000, rebalance_ms=10000, protocol="range"):
        body = (_str(group) + struct.pack(">ii", session_ms, rebalance_ms) + _str(member_id)
                + _str(instance_id) + _str("consumer") + struct.pack(">i", 1)
                + _str(protocol) + _bytes(protocol_meta))
        r = self.request(11, 5, body)
        r.i32()  # throttle
        err, gen = r.i16(), r.i32()
        proto, leader, member = r.string(), r.string(), r.string()
        members = [(r.string(), r.string(), r.bytes_()) for _ in range(r.i32())]
        return err, gen, proto, leader, member, members

    def join_until_member(self, group, **kw):
        """JoinGroup; on MEMBER_ID_REQUIRED (79) join again with the id handed out."""
        res = self.join_group(group, **kw)
        if res[0] == 79:
            kw["member_id"] = res[4]
            res = self.join_group(group, **kw)
        return res

    # SyncGroup v3: (error, assignment)
    def sync_group(self, group, generation, member_id, assignments=(), instance_id=None):
        body = (_str(group) + struct.pack(">i", generation) + _str(member_id) + _str(instance_id)
                + struct.pack(">i", len(assignments))
                + b"".join(_str(m) + _bytes(a) for m, a in assignments))
        r = self.request(14, 3, body)
        r.i32()
        return r.i16(), r.bytes_()

    # Heartbeat v3: error
    def heartbeat(self, group, generation, member_id, instance_id=None):
        body = _str(group) + struct.pack(">i", generation) + _str(member_id) + _str(instance_id)
        r = self.request(12, 3, body)
        r.i32()
        return r.i16()

    # LeaveGroup v3: (error, [(member, instance, error)])
    def leave_group(self, group, member_id):
        body = _str(group) + struct.pack(">i", 1) + _str(member_id) + _str(None)
        r = self.request(13, 3, body)
        r.i32()
        err = r.i16()
        return err, [(r.string(), r.string(), r.i16()) for _ in range(r.i32())]

    # OffsetCommit v7: {(topic, partition): error}
    def offset_commit(self, group, offsets, generation=-1, member_id="", instance_id=None):
        """offsets: {topic: {partition: offset}}"""
        body = _str(group) + struct.pack(">i", generation) + _str(member_id) + _str(instance_id)
        body += struct.pack(">i", len(offsets))
        for topic, parts in offsets.items():
            body += _str(topic) + struct.pack(">i", len(parts))
            for p, off in parts.items():
                body += struct.pack(">iqi", p, off, -1) + _str("")
        r = self.request(8, 7, body)
        r.i32()
        out = {}
        for _ in range(r.i32()):
            t = r.string()
            for _ in range(r.i32()):
                p = r.i32()
                out[(t, p)] = r.i16()
        return out

    # FindCoordinator v2: (error, node, host, port)
    def find_coordinator(self, group):
        r = self.request(10, 2, _str(group) + struct.pack(">b", 0))
        r.i32()
        err = r.i16()
        r.string()  # error message
        return err, r.i32(), r.string(), r.i32()


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def _take(self, n):
        assert self.pos + n <= len(self.data), "response truncated"
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i16(self):
        return struct.unpack(">h", self._take(2))[0]

    def i32(self):
        return struct.unpack(">i", self._take(4))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self._take(n).decode()

    def bytes_(self):
        n = self.i32()
        return None if n < 0 else self._take(n)


def consumer_subscription(topics):
    """ConsumerProtocolSubscription v0: the metadata a Java consumer sends in JoinGroup."""
    return struct.pack(">hi", 0, len(topics)) + b"".join(_str(t) for t in topics) + _bytes(b"")


def consumer_assignment(topic, partitions):
    """ConsumerProtocolAssignment v0 for one topic."""
    return (struct.pack(">hi", 0, 1) + _str(topic) + struct.pack(">i", len(partitions))
            + b"".join(struct.pack(">i", p) for p in partitions) + _bytes(b""))
