"""Durability across restarts: every acknowledged message survives SIGTERM, and survives kill -9
when the broker flushes every message (log.flush.interval.messages=1); writes go on afterwards."""

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from conftest import create_topics


def read_all(bootstrap, topic, partitions, expect_at_least, timeout=120):
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "interop-restart",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    try:
        highs = {}
        for p in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assert low == 0
            highs[p] = high
        total = sum(highs.values())
        assert total >= expect_at_least, f"high watermarks {highs} below {expect_at_least} acknowledged"
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got = {}
        deadline = time.monotonic() + timeout
        while len(got) < total and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=5000, timeout=1.0):
                assert m.error() is None, m.error()
                assert (m.partition(), m.offset()) not in got, "offset delivered twice"
                got[(m.partition(), m.offset())] = (m.key(), m.value())
        assert len(got) == total, f"read {len(got)} of {total}"
        for p in range(partitions):
            offs = sorted(o for (pp, o) in got if pp == p)
            assert offs == list(range(highs[p])), f"partition {p}: gap or repeat in offsets"
        return got, highs
    finally:
        consumer.close()


def produce(bootstrap, topic, partitions, start, count, acked):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2})

    def on_delivery(err, msg):
        if err is None:
            acked[(msg.partition(), msg.offset())] = (msg.key(), msg.value())

    for i in range(start, start + count):
        while True:
            try:
                producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode() * 3,
                                 partition=i % partitions, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0
    return producer


def test_sigterm_keeps_everything(broker_factory, monkeypatch):
    # Info level, to read the broker's account of how it opened its logs.
    monkeypatch.setenv("MINIKAFKA_TEST_LOG_LEVEL", "info")
    broker = broker_factory()
    topic, parts = "restart-term", 2
    create_topics(broker.bootstrap, [(topic, parts)])
    acked = {}
    produce(broker.bootstrap, topic, parts, 0, 20_000, acked)
    assert len(acked) == 20_000
    code = broker.stop()
    assert code == 0, f"broker exited with {code} on SIGTERM"
    broker.start()
    opened = [l for l in broker.output_tail(200).splitlines() if "partition logs after" in l]
    assert opened and "after a clean shutdown: 0 segments recovered" in opened[-1], opened
    got, _ = read_all(broker.bootstrap, topic, parts, len(acked))
    assert got == acked
    # The topic and its id survive too: new writes continue at the old end.
    more = {}
    produce(broker.bootstrap, topic, parts, 20_000, 100, more)
    assert min(o for (_, o) in more) == 10_000
    broker.restart()
    got, _ = read_all(broker.bootstrap, topic, parts, len(acked) + len(more))
    assert got == {**acked, **more}


def test_kill9_keeps_acknowledged(broker_factory, monkeypatch):
    monkeypatch.setenv("MINIKAFKA_TEST_LOG_LEVEL", "info")
    broker = broker_factory({"log.flush.interval.messages": "1"})
    topic, parts = "restart-kill", 2
    create_topics(broker.bootstrap, [(topic, parts)])

    acked = {}
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 1,
                         "message.timeout.ms": 5000, "retries": 0})

    def on_delivery(err, msg):
        if err is None:
            acked[(msg.partition(), msg.offset())] = (msg.key(), msg.value())

    i = 0
    deadline = time.monotonic() + 120
    while len(acked) < 5_000 and time.monotonic() < deadline:
        try:
            producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                             partition=i % parts, on_delivery=on_delivery)
            i += 1
        except BufferError:
            pass
        producer.poll(0)
    assert len(acked) >= 5_000, "broker too slow to acknowledge 5,000 flushed messages in 120s"
    broker.kill9()  # while the producer still has messages in flight
    producer.flush(10)
    snapshot = dict(acked)
    del producer

    broker.start()
    opened = [l for l in broker.output_tail(200).splitlines() if "partition logs after" in l]
    assert opened and "after an unclean shutdown" in opened[-1], opened
    got, _ = read_all(broker.bootstrap, topic, parts, len(snapshot))
    missing = [k for k in snapshot if k not in got]
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[:3]}"
    altered = [k for k, v in snapshot.items() if got[k] != v]
    assert not altered, f"acknowledged messages changed: {altered[:3]}"

    more = {}
    produce(broker.bootstrap, topic, parts, 10_000_000, 200, more)
    assert len(more) == 200
    got2, _ = read_all(broker.bootstrap, topic, parts, len(got) + 200)
    for k, v in more.items():
        assert got2[k] == v
