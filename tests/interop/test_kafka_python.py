"""kafka-python (pure Python client): 10,000 messages produced and read back with assign(); the
topic shows up in consumer.topics()."""

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

COUNT = 10_000
PARTITIONS = 2


def test_kafka_python_roundtrip(broker):
    topic = "kafka-python-topic"
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        admin.close()

    # kafka-python 3 turns idempotence on by default: InitProducerId and sequences are served.
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5
    )
    futures = []
    for i in range(COUNT):
        futures.append(
            producer.send(
                topic,
                key=f"k{i}".encode(),
                value=f"value-{i}".encode() * (1 + i % 5),
                partition=i % PARTITIONS,
                headers=[("i", str(i).encode())],
                timestamp_ms=1_600_000_000_000 + i,
            )
        )
    producer.flush(timeout=120)
    offsets = {p: [] for p in range(PARTITIONS)}
    for fut in futures:
        md = fut.get(timeout=30)
        offsets[md.partition].append(md.offset)
    producer.close(timeout=10)
    for p, offs in offsets.items():
        assert offs == list(range(COUNT // PARTITIONS)), f"partition {p} offsets"

    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=2000,
    )
    try:
        assert topic in consumer.topics()
        assert consumer.partitions_for_topic(topic) == set(range(PARTITIONS))
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        assert end == {tp: COUNT // PARTITIONS for tp in tps}

        got = {p: [] for p in range(PARTITIONS)}
        n = 0
        deadline = time.monotonic() + 120
        while n < COUNT and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=1000, max_records=2000).items():
                got[tp.partition].extend(records)
                n += len(records)
        assert n == COUNT, f"consumed {n} of {COUNT}"
        for p, records in got.items():
            assert [r.offset for r in records] == list(range(COUNT // PARTITIONS))
            for j, r in enumerate(records):
                i = j * PARTITIONS + p
                assert r.key == f"k{i}".encode()
                assert r.value == f"value-{i}".encode() * (1 + i % 5)
                assert r.timestamp == 1_600_000_000_000 + i
                assert list(r.headers) == [("i", str(i).encode())]
    finally:
        consumer.close()
