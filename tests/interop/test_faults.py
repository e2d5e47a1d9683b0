"""Faults with real clients against the release binary.

- fsync failures injected into the running broker with strace (`inject=fdatasync:error=EIO`):
  with log.flush.interval.messages=1 and acks=all, a record is acknowledged only if its fsync
  succeeded; after a restart every acknowledged record is there, exactly once, in order.
- A full disk (the log dir on a small tmpfs): producers get errors, not a crash; consumers read
  everything acknowledged; deleting a topic frees space and produce works again; a restart
  loses nothing.
- A compression bomb (a few KB of gzip expanding to millions of keyless records) sent to a
  compacted topic is refused record by record without the broker's memory following it.
"""

import os
import shutil
import socket
import struct
import subprocess
import time
import zlib

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from conftest import create_topics


def consume_all(bootstrap, topic, timeout=60):
    """Every record of partition 0 as (offset, value), read until the high watermark."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults", "enable.auto.commit": False})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + timeout
        while (not got or got[-1][0] < high - 1) and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(m.error())
                got.append((m.offset(), m.value()))
        return got, high
    finally:
        c.close()


def rss_kib(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


# ---------------------------------------------------------------- fsync failures (strace)

@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install strace)")
def test_failed_fsync_is_never_acknowledged(broker_factory):
    b = broker_factory({"log.flush.interval.messages": "1"})
    create_topics(b.bootstrap, [("durable", 1)])
    acked, failed = {}, []

    def on_delivery(err, msg):
        if err is None:
            acked[msg.offset()] = msg.value()
        else:
            failed.append(err.code())

    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 1,
                  "message.timeout.ms": 4000, "enable.idempotence": False})

    def produce(start, n):
        for i in range(start, start + n):
            p.produce("durable", value=f"m{i}".encode(), partition=0, on_delivery=on_delivery)
            p.poll(0)
            time.sleep(0.001)

    produce(0, 300)
    assert p.flush(30) == 0
    assert len(acked) == 300 and not failed

    # From now on every fsync of the broker fails with EIO.
    strace = subprocess.Popen(
        ["strace", "-f", "-p", str(b.proc.pid), "-e", "trace=fdatasync,fsync",
         "-e", "inject=fdatasync,fsync:error=EIO"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = strace.stderr.readline()
        assert "attached" in line, line
        acked_before = dict(acked)
        produce(300, 100)
        p.flush(10)
        assert len(failed) == 100, f"{len(failed)} of 100 failed"
        assert acked == acked_before, "a record whose fsync failed was acknowledged"
    finally:
        strace.terminate()
        strace.wait(timeout=10)
    assert set(failed) <= {KafkaError.KAFKA_STORAGE_ERROR, KafkaError._MSG_TIMED_OUT}, failed
    assert "OFFLINE" in b.output_tail(200), b.output_tail(40)

    # The broker still answers: metadata, and reads of what reached the disk.
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
    assert "durable" in md.topics

    b.restart()
    got, high = consume_all(b.bootstrap, "durable")
    by_offset = dict(got)
    assert [o for o, _ in got] == list(range(high)), "offsets without gaps or repeats"
    for off, value in acked_before.items():
        assert by_offset.get(off) == value, f"acknowledged offset {off} lost or changed"
    # And the log dir is writable again.
    p2 = Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
    p2.produce("durable", value=b"after-restart", partition=0)
    assert p2.flush(20) == 0


# ---------------------------------------------------------------- a full disk (tmpfs)

def mount_tmpfs(path, size):
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    return r.returncode == 0, r.stderr.strip()


def test_full_disk_refuses_writes_and_recovers(broker_factory, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small-disk"
    ok, why = mount_tmpfs(mnt, "24m")
    if not ok:
        pytest.skip(f"cannot mount a tmpfs here: {why}")
    try:
        b = broker_factory({"log.flush.interval.messages": "1", "log.segment.bytes": "1048576"},
                           start=False)
        b.log_dir = mnt / "logs"
        b.log_dir.mkdir()
        b.start()
        create_topics(b.bootstrap, [("keep", 1), ("filler", 1)])
        acked, errors = {}, []

        def on_delivery(err, msg):
            if err is None:
                acked.setdefault(msg.topic(), {})[msg.offset()] = msg.value()
            else:
                errors.append(err.code())

        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5,
                      "message.timeout.ms": 3000, "enable.idempotence": False})
        for i in range(200):
            p.produce("keep", value=f"keep-{i}".encode() * 10, partition=0, on_delivery=on_delivery)
        assert p.flush(30) == 0
        # Fill the disk.
        chunk = os.urandom(50_000)
        for i in range(2000):
            p.produce("filler", value=chunk, partition=0, on_delivery=on_delivery)
            if i % 50 == 0:
                p.flush(10)
                if errors:
                    break
        p.flush(15)
        assert errors, "the disk never filled"
        assert set(errors) <= {KafkaError.KAFKA_STORAGE_ERROR, KafkaError._MSG_TIMED_OUT}, set(errors)
        assert b.proc.poll() is None, "the broker must not crash on a full disk"

        # Everything acknowledged is readable while the disk is full.
        got, _ = consume_all(b.bootstrap, "keep")
        assert dict(got) == acked["keep"]

        # Free space: delete the filler topic; produce works again.
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        for f in admin.delete_topics(["filler"], request_timeout=20).values():
            f.result(timeout=20)
        errors.clear()
        for i in range(200, 300):
            p.produce("keep", value=f"keep-{i}".encode() * 10, partition=0, on_delivery=on_delivery)
        assert p.flush(30) == 0
        assert not errors, errors

        b.restart()
        got, high = consume_all(b.bootstrap, "keep")
        assert [o for o, _ in got] == list(range(high))
        assert dict(got) == acked["keep"], "nothing lost, nothing extra, nothing corrupt"
        b.stop()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# ---------------------------------------------------------------- compression bomb

def crc32c(data):
    from kafka.record.util import calc_crc32c
    return calc_crc32c(data)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def varint(n):
    n = zigzag(n)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def bomb_batch(records, now_ms):
    """A gzip v2 batch of `records` keyless one-byte records (7 bytes each decompressed)."""
    one = b"\x00" + varint(0) + varint(0) + varint(-1) + varint(1) + b"x" + varint(0)
    rec = varint(len(one)) + one
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    gz = bytearray()
    block = rec * 65536
    left = records
    while left:
        n = min(left, 65536)
        gz += comp.compress(block if n == 65536 else rec * n)
        left -= n
    gz += comp.flush()
    attrs = 1  # gzip
    tail = struct.pack(">hiqqqhii", attrs, records - 1, now_ms, now_ms, -1, -1, -1, records) + bytes(gz)
    crc = crc32c(tail)
    body = struct.pack(">ibI", 0, 2, crc) + tail
    return struct.pack(">qi", 0, len(body)) + body


def produce_raw(port, topic, batch, version=7):
    """One Produce request (non-flexible v7) on a raw socket; returns the error code."""
    t = topic.encode()
    body = struct.pack(">h", -1) + struct.pack(">hi", -1, 30000)  # no txn id, acks, timeout
    body += struct.pack(">i", 1) + struct.pack(">h", len(t)) + t
    body += struct.pack(">i", 1) + struct.pack(">i", 0) + struct.pack(">i", len(batch)) + batch
    client = b"bomb"
    header = struct.pack(">hhih", 0, version, 7, len(client)) + client
    frame = header + body
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        resp = recv_exact(s, size)
    # correlation, topics(1), name, partitions(1), index, error
    pos = 4 + 4
    (nlen,) = struct.unpack_from(">h", resp, pos)
    pos += 2 + nlen + 4 + 4
    (err,) = struct.unpack_from(">h", resp, pos)
    return err


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise AssertionError("connection closed")
        buf += chunk
    return bytes(buf)


def test_compression_bomb_to_a_compacted_topic_keeps_memory_flat(broker_factory):
    b = broker_factory()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    fs = admin.create_topics([
        NewTopic("bomb-compacted", 1, 1, config={"cleanup.policy": "compact"}),
        NewTopic("bomb-lz4", 1, 1, config={"compression.type": "lz4"}),
    ])
    for f in fs.values():
        f.result(timeout=20)
    now = int(time.time() * 1000)
    batch = bomb_batch(8_000_000, now)  # 56 MB of records in
    assert len(batch) < 200_000, len(batch)
    before = rss_kib(b.proc.pid)
    err = produce_raw(b.port, "bomb-compacted", batch)
    assert err == 87, err  # INVALID_RECORD: every record is keyless
    # A topic whose codec differs rebuilds the batch: streamed, not held.
    err = produce_raw(b.port, "bomb-lz4", batch)
    assert err == 0, err
    peak = rss_kib(b.proc.pid, "VmHWM")
    assert peak < 64 * 1024, f"peak RSS {peak} KiB (before: {before} KiB)"
    assert b.proc.poll() is None


# ---------------------------------------------------------------- KIP-467 record errors

def test_record_errors_fail_exactly_the_bad_records(broker):
    """librdkafka fails the records the broker names with INVALID_RECORD and the rest of the
    batch with _INVALID_DIFFERENT_RECORD (its test 0011 counts them the same way)."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic("cmp", 1, 1, config={"cleanup.policy": "compact"})]).values():
        f.result(timeout=20)
    results = {}

    def on_delivery(err, msg):
        results[int(msg.value())] = err.code() if err else None

    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 500, "compression.type": "gzip"})
    # Metadata first, so the ten records below share one batch.
    p.produce("cmp", key=b"warm", value=b"-1", partition=0, on_delivery=on_delivery)
    assert p.flush(20) == 0 and results.pop(-1) is None
    bad = {2, 5, 7}
    for i in range(10):
        key = None if i in bad else f"k{i}".encode()
        p.produce("cmp", key=key, value=str(i).encode(), partition=0, on_delivery=on_delivery)
    p.flush(20)
    assert {i for i, e in results.items() if e == KafkaError.INVALID_RECORD} == bad, results
    others = {i: e for i, e in results.items() if i not in bad}
    assert set(others.values()) == {KafkaError._INVALID_DIFFERENT_RECORD}, results
    # The same records with keys go through.
    results.clear()
    for i in range(10):
        p.produce("cmp", key=f"k{i}".encode(), value=str(i).encode(), partition=0, on_delivery=on_delivery)
    p.flush(20)
    assert set(results.values()) == {None}, results
