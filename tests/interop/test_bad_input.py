"""Hostile input against the release binary while a real client keeps producing and consuming:
the broker answers or closes each bad connection, never dies, and its memory stays bounded."""

import os
import random
import socket
import struct
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from conftest import create_topics, wait_until_read


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def send(port, payload):
    """Sends raw bytes; returns what came back before the broker closed (or 1 s passed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(payload)
        s.settimeout(1.0)
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            pass
        return got
    finally:
        s.close()


def header(key, version, corr=1, client=b"bad"):
    return struct.pack(">hhih", key, version, corr, len(client)) + client


def framed(body):
    return struct.pack(">i", len(body)) + body


def test_bad_input_never_hurts_the_broker(broker):
    topic = "bad-input-victim"
    create_topics(broker.bootstrap, [(topic, 1)])
    stop = threading.Event()
    errors, produced = [], [0]

    def good_client():
        p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 1})
        def report(err, _msg):
            if err is not None:
                errors.append(str(err))
            else:
                produced[0] += 1
        i = 0
        while not stop.is_set():
            p.produce(topic, value=f"v{i}".encode(), on_delivery=report)
            i += 1
            p.poll(0.001)
        p.flush(30)

    t = threading.Thread(target=good_client)
    t.start()
    port = broker.port
    rng = random.Random(7)
    before = rss_kib(broker.proc.pid)
    try:
        for _ in range(50):
            send(port, bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 4096))))
        for size in (0, -1, -(2**31), 2**31 - 1, 7):
            assert send(port, struct.pack(">i", size) + b"\0" * 16) == b""
        # Declares 100 MiB (the limit), sends 1 MiB and stalls: only what arrived is buffered.
        hold = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        for s in hold:
            s.sendall(struct.pack(">i", 100 * 1024 * 1024) + os.urandom(1 << 20))
        for s in hold:
            wait_until_read(s)
        stalled = rss_kib(broker.proc.pid)
        for s in hold:
            s.close()
        assert send(port, framed(header(0, 0)[:5])) == b""  # truncated header
        assert send(port, framed(header(12345, 0))) == b""  # unknown API key
        assert send(port, framed(header(0, 2) + b"\0" * 20)) == b""  # Produce v2 (Kafka 4: gone)
        reply = send(port, framed(header(18, 99, corr=77)))  # ApiVersions v99
        assert reply[4:8] == struct.pack(">i", 77) and reply[8:10] == struct.pack(">h", 35)
        # The good client goes on being served after all of it.
        after, deadline = produced[0], time.monotonic() + 30
        while produced[0] < after + 100:
            assert time.monotonic() < deadline, "the good client stopped being served"
            time.sleep(0.01)  # polling for a condition
    finally:
        stop.set()
        t.join(60)
    assert broker.proc.poll() is None, "broker died"
    assert not errors, errors[:3]
    assert produced[0] > 0
    # 20 stalled 1 MiB partial frames cost about 20 MiB while they are held; nothing was
    # allocated for the declared 100 MiB each, and the memory is returned afterwards.
    assert stalled - before < 64 * 1024, f"RSS grew {before} -> {stalled} KiB"
    assert rss_kib(broker.proc.pid) - before < 16 * 1024
    # The good client's data is all there and readable.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "x",
                  "enable.auto.commit": False})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert high == produced[0]
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        n, deadline = 0, time.monotonic() + 30
        while n < high and time.monotonic() < deadline:
            n += sum(1 for m in c.consume(10000, 1.0) if m.error() is None)
        assert n == high
    finally:
        c.close()
