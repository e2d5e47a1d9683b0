"""Every codec end to end: confluent-kafka (librdkafka) produces with `compression.type` set to
gzip, snappy, lz4 and zstd; confluent-kafka, kafka-python, aiokafka and kcat read the messages
back byte-identical. Topics created with `compression.type=<codec>` store uncompressed (or
differently compressed) producer batches with that codec, written by the broker's own encoders,
and every client still reads them.

kafka-python needs python-snappy, lz4 and zstandard for those codecs and aiokafka needs cramjam;
a client whose codec package is missing is skipped for that codec (with the reason).
"""

import asyncio
import shutil
import subprocess

import pytest

from conftest import create_topics

CODECS = ["gzip", "snappy", "lz4", "zstd"]
COUNT = 2_000
KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def message(i):
    # Compressible, with a few bytes outside ASCII; no ':' or newline in keys (kcat -K).
    key = f"key-{i:05d}".encode()
    value = (f"value {i} " + "abc" * (i % 50)).encode() + bytes([i % 256, 0xFF, 0x00])
    return key, value


def expected():
    return [message(i) for i in range(COUNT)]


def produce_confluent(bootstrap, topic, codec):
    from confluent_kafka import Producer

    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.type": codec,
            "linger.ms": 50,
            "batch.num.messages": 500,
        }
    )
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)

    for i in range(COUNT):
        k, v = message(i)
        p.produce(topic, key=k, value=v, headers=[("i", str(i).encode())], on_delivery=on_delivery)
        p.poll(0)
    assert p.flush(60) == 0
    assert errors == []


def read_confluent(bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "enable.auto.commit": False}
    )
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        while len(got) < COUNT:
            msgs = c.consume(1000, timeout=30)
            assert msgs, f"confluent-kafka stalled at {len(got)}"
            for m in msgs:
                assert m.error() is None, m.error()
                assert m.offset() == len(got)
                assert m.headers() == [("i", str(len(got)).encode())]
                got.append((m.key(), m.value()))
        return got
    finally:
        c.close()


def read_kafka_python(bootstrap, topic):
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        got = []
        for m in c:
            assert m.offset == len(got)
            got.append((m.key, m.value))
            if len(got) == COUNT:
                break
        return got
    finally:
        c.close()


async def _read_aiokafka(bootstrap, topic):
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        got = []
        while len(got) < COUNT:
            batches = await asyncio.wait_for(c.getmany(timeout_ms=1000), 30)
            for msgs in batches.values():
                for m in msgs:
                    assert m.offset == len(got)
                    got.append((m.key, m.value))
        return got
    finally:
        await c.stop()


def read_aiokafka(bootstrap, topic):
    return asyncio.run(asyncio.wait_for(_read_aiokafka(bootstrap, topic), 90))


def read_kcat(bootstrap, topic):
    # -f: key length in decimal then a newline, the key, then the value behind %R (its length as
    # a big-endian 32-bit int), so binary values survive untouched.
    proc = subprocess.run(
        [KCAT, "-C", "-b", bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e",
         "-f", "%K\n%k%R%s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out, got, pos = proc.stdout, [], 0
    while pos < len(out):
        nl = out.index(b"\n", pos)
        n = int(out[pos:nl])
        pos = nl + 1
        k = out[pos:pos + n]
        pos += n
        n = int.from_bytes(out[pos:pos + 4], "big")
        v = out[pos + 4:pos + 4 + n]
        pos += 4 + n
        got.append((k, v))
    return got


def kafka_python_lacks(codec):
    import kafka.codec as kc

    has = {"gzip": kc.has_gzip, "snappy": kc.has_snappy, "lz4": kc.has_lz4, "zstd": kc.has_zstd}
    return not has[codec]()


def aiokafka_lacks(codec):
    import aiokafka.codec as ac

    has = {"gzip": ac.has_gzip, "snappy": ac.has_snappy, "lz4": ac.has_lz4, "zstd": ac.has_zstd}
    return not has[codec]()


READERS = ["confluent", "kafka-python", "aiokafka", "kcat"]


def read_with(reader, codec, bootstrap, topic):
    if reader == "confluent":
        return read_confluent(bootstrap, topic)
    if reader == "kafka-python":
        if kafka_python_lacks(codec):
            pytest.skip(f"kafka-python has no {codec} codec package installed")
        return read_kafka_python(bootstrap, topic)
    if reader == "aiokafka":
        if aiokafka_lacks(codec):
            pytest.skip(f"aiokafka has no {codec} codec package (cramjam) installed")
        return read_aiokafka(bootstrap, topic)
    if KCAT is None:
        pytest.skip("kcat is not installed")
    return read_kcat(bootstrap, topic)


def stored_codecs(broker, topic):
    """The codec bits (attributes & 7) of every batch in the partition's first segment file."""
    seg = broker.segment_files(topic, 0)[0].read_bytes()
    pos, codecs = 0, set()
    while pos + 61 <= len(seg):
        length = int.from_bytes(seg[pos + 8:pos + 12], "big")
        codecs.add(int.from_bytes(seg[pos + 21:pos + 23], "big") & 7)
        pos += 12 + length
    return codecs


BITS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.fixture(scope="module")
def codec_broker(tmp_path_factory):
    """One broker holding, per codec, a topic produced compressed by confluent-kafka
    (`sent-<codec>`) and a topic with `compression.type=<codec>` produced uncompressed, so the
    broker compressed it (`kept-<codec>`)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from conftest import Broker

    b = Broker(tmp_path_factory.mktemp("codecs")).start()
    try:
        create_topics(b.bootstrap, [(f"sent-{c}", 1) for c in CODECS])
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        futures = admin.create_topics(
            [NewTopic(f"kept-{c}", 1, 1, config={"compression.type": c}) for c in CODECS],
            request_timeout=30,
        )
        for fut in futures.values():
            fut.result(timeout=30)
        for c in CODECS:
            produce_confluent(b.bootstrap, f"sent-{c}", c)
            produce_confluent(b.bootstrap, f"kept-{c}", "none")
        yield b
    finally:
        b.stop()


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("by", ["sent", "kept"])
def test_codec_round_trip(codec_broker, by, codec, reader):
    topic = f"{by}-{codec}"
    stored = stored_codecs(codec_broker, topic)
    if by == "sent":
        # Stored as the client sent them. librdkafka sends a batch uncompressed when
        # compressing does not make it smaller (a batch of one short message under gzip's
        # 18-byte framing, when a loaded machine lets linger.ms expire early).
        assert BITS[codec] in stored and stored <= {0, BITS[codec]}, stored
    else:
        assert stored == {BITS[codec]}
    got = read_with(reader, codec, codec_broker.bootstrap, topic)
    assert got == expected()


def test_zstd_topic_recompresses_producer_batches(broker):
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = "zstd-topic"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fut = admin.create_topics(
        [NewTopic(topic, 1, 1, config={"compression.type": "zstd"})], request_timeout=30
    )[topic]
    fut.result(timeout=30)
    # gzip from the producer, stored as zstd (attributes codec 4).
    produce_confluent(broker.bootstrap, topic, "gzip")
    assert stored_codecs(broker, topic) == {4}
    want = expected()
    for reader in READERS:
        if reader == "kafka-python" and kafka_python_lacks("zstd"):
            continue
        if reader == "aiokafka" and aiokafka_lacks("zstd"):
            continue
        if reader == "kcat" and KCAT is None:
            continue
        assert read_with(reader, "zstd", broker.bootstrap, topic) == want, reader
