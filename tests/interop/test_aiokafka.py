"""aiokafka (asyncio client, its own protocol code): an idempotent producer and an assign()-ed
consumer round-trip keys, values and headers; end/beginning offsets and offsets_for_times."""

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

COUNT = 5_000


async def roundtrip(bootstrap):
    topic = "aiokafka-topic"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                key=f"k{i}".encode(),
                value=f"v{i}".encode(),
                headers=[("n", str(i).encode())],
                timestamp_ms=1_700_000_000_000 + i,
            )
            for i in range(COUNT)
        ]
        offsets = [(await f).offset for f in futures]
    finally:
        await producer.stop()
    assert offsets == list(range(COUNT))

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got = []
        while len(got) < COUNT:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            for msgs in batches.values():
                got.extend(msgs)
        for i, m in enumerate(got):
            assert (m.offset, m.key, m.value) == (i, f"k{i}".encode(), f"v{i}".encode())
            assert list(m.headers) == [("n", str(i).encode())]
            assert m.timestamp == 1_700_000_000_000 + i
        assert await consumer.end_offsets([tp]) == {tp: COUNT}
        assert await consumer.beginning_offsets([tp]) == {tp: 0}
        found = await consumer.offsets_for_times({tp: 1_700_000_000_000 + 1234})
        assert found[tp].offset == 1234
    finally:
        await consumer.stop()


def test_aiokafka_roundtrip(broker):
    asyncio.run(asyncio.wait_for(roundtrip(broker.bootstrap), 120))
