"""Segment boundaries: with log.segment.bytes=1 MiB, 100,000 records in one partition span many
segments; reading them back with several fetch size limits gives every offset once, in order."""

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from conftest import create_topics

COUNT = 100_000


def value(i):
    return f"{i:08d}|".encode() + bytes([65 + i % 26]) * (40 + i % 120)


def test_segments_and_fetch_sizes(broker_factory):
    broker = broker_factory({"log.segment.bytes": "1048576"})
    topic = "segments"
    create_topics(broker.bootstrap, [(topic, 1)])

    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 10,
                         "batch.size": 65536})
    errors = []
    for i in range(COUNT):
        while True:
            try:
                producer.produce(topic, value=value(i), partition=0,
                                 on_delivery=lambda err, msg: err and errors.append(err))
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(120) == 0
    assert not errors, errors[:3]

    segments = broker.segment_files(topic, 0)
    assert len(segments) >= 5, f"expected several 1 MiB segments, found {[s.name for s in segments]}"
    for s in segments:
        assert s.stat().st_size <= 1048576 + 65536 + 1024, f"{s.name} overshoots segment.bytes"

    settings = [
        {},  # librdkafka defaults (fetch.max.bytes 50 MiB, max.partition.fetch.bytes 1 MiB)
        {"fetch.max.bytes": 1048576, "max.partition.fetch.bytes": 262144},
        {"fetch.max.bytes": 100000, "max.partition.fetch.bytes": 10000, "message.max.bytes": 100000,
         "receive.message.max.bytes": 200000},
        {"fetch.max.bytes": 1000, "max.partition.fetch.bytes": 1000, "message.max.bytes": 1000,
         "receive.message.max.bytes": 1000000},
    ]
    for extra in settings:
        conf = {"bootstrap.servers": broker.bootstrap, "group.id": "interop-seg",
                "enable.auto.commit": False, "fetch.wait.max.ms": 100}
        conf.update(extra)
        consumer = Consumer(conf)
        try:
            consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
            expect = 0
            deadline = time.monotonic() + 240
            while expect < COUNT and time.monotonic() < deadline:
                for m in consumer.consume(num_messages=10000, timeout=1.0):
                    assert m.error() is None, m.error()
                    assert m.offset() == expect, f"{extra}: got offset {m.offset()}, expected {expect}"
                    assert m.value() == value(expect), f"{extra}: wrong value at {expect}"
                    expect += 1
            assert expect == COUNT, f"{extra}: read {expect} of {COUNT}"
        finally:
            consumer.close()
