"""confluent-kafka (librdkafka): 200,000 messages over acks=all, acks=1 and acks=0, delivery reports,
byte-identical read-back with timestamps and headers through an assign()ed Consumer, watermarks and
offsets_for_times."""

import random
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    Consumer,
    Producer,
    TopicPartition,
)

from conftest import create_topics

PARTITIONS = 2
BASE_TS = 1_700_000_000_000
RUNS = [("acks-all", "all", 70_000), ("acks-one", "1", 70_000), ("acks-zero", "0", 60_000)]


def payload(topic, i):
    rng = random.Random(f"{topic}/{i}")
    key = None if i % 50 == 0 else f"{topic}-k{i}".encode()
    value = rng.randbytes(rng.randrange(0, 300))
    if i % 1000 == 7:
        value = None  # a tombstone-like null value now and then
    headers = [("seq", str(i).encode()), ("bin", bytes([i % 256, 0, 255]))] if i % 3 == 0 else None
    return key, value, headers


def produce_all(bootstrap, topic, acks, count):
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "linger.ms": 5,
            # acks=all runs as an idempotent producer (InitProducerId, sequences).
            "enable.idempotence": acks in ("all", -1, "-1"),
            "compression.type": "none",
        }
    )
    reports = {}

    def on_delivery(err, msg):
        reports[len(reports)] = (err, msg.topic(), msg.partition(), msg.offset(), msg.headers())

    for i in range(count):
        key, value, headers = payload(topic, i)
        part = i % PARTITIONS
        while True:
            try:
                producer.produce(
                    topic, value=value, key=key, headers=headers, partition=part,
                    timestamp=BASE_TS + i, on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    assert remaining == 0, f"{remaining} messages still undelivered after 120s"
    assert len(reports) == count
    errors = [r for r in reports.values() if r[0] is not None]
    assert not errors, f"{len(errors)} delivery errors, first: {errors[0]}"
    return reports


def test_confluent_produce_consume_acks(broker):
    create_topics(broker.bootstrap, [(t, PARTITIONS) for t, _, _ in RUNS])

    for topic, acks, count in RUNS:
        reports = produce_all(broker.bootstrap, topic, acks, count)
        per_part = {p: [] for p in range(PARTITIONS)}
        for err, t, p, off, _ in reports.values():
            assert t == topic
            per_part[p].append(off)
        for p, offs in per_part.items():
            assert len(offs) == count // PARTITIONS
            if acks == "0":
                # No response, so no offset is known (None in Python, -1 in C) but no error.
                assert all(o is None or o in (-1, -1001) or o >= 0 for o in offs)
            else:
                assert sorted(offs) == list(range(len(offs))), f"{topic}[{p}]: offsets not 0..n-1"

    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "interop-no-group-used",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
        }
    )
    try:
        for topic, _, count in RUNS:
            per = count // PARTITIONS
            for p in range(PARTITIONS):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                assert (low, high) == (0, per), f"{topic}[{p}] watermarks {(low, high)}"

            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
            got = {p: [] for p in range(PARTITIONS)}
            deadline = time.monotonic() + 180
            n = 0
            while n < count and time.monotonic() < deadline:
                for msg in consumer.consume(num_messages=5000, timeout=1.0):
                    assert msg.error() is None, f"consume error: {msg.error()}"
                    got[msg.partition()].append(msg)
                    n += 1
            assert n == count, f"{topic}: consumed {n} of {count}"

            for p, msgs in got.items():
                assert [m.offset() for m in msgs] == list(range(per)), f"{topic}[{p}] offsets"
                for j, m in enumerate(msgs):
                    i = j * PARTITIONS + p
                    key, value, headers = payload(topic, i)
                    assert m.key() == key, f"{topic}[{p}]@{j} key"
                    assert m.value() == value, f"{topic}[{p}]@{j} value"
                    assert m.timestamp() == (TIMESTAMP_CREATE_TIME, BASE_TS + i), f"{topic}[{p}]@{j} ts"
                    assert (m.headers() or None) == headers, f"{topic}[{p}]@{j} headers"

            # offsets_for_times: first offset whose timestamp >= T.
            for p in range(PARTITIONS):
                j = per // 3
                t_exact = BASE_TS + j * PARTITIONS + p
                t_between = t_exact - 1 if p == 1 else t_exact  # a time between two records
                # One partition per request: a ListOffsets naming a partition twice is ambiguous.
                def lookup(ts):
                    (r,) = consumer.offsets_for_times([TopicPartition(topic, p, ts)], timeout=10)
                    assert r.error is None, r.error
                    return r.offset

                assert lookup(t_exact) == j, f"{topic}[{p}] offsets_for_times({t_exact})"
                assert lookup(t_between) == j
                assert lookup(BASE_TS - 5) == 0
                assert lookup(BASE_TS + 10 * count) == -1, "after the last record: no offset (-1)"
            consumer.unassign()
    finally:
        consumer.close()
