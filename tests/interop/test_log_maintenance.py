"""Log maintenance with real clients (issue 4's acceptance): compaction of 200,000 updates over
1,000 keys (one latest value per live key, tombstoned keys gone, > 90% of the bytes reclaimed),
kill -9 while the cleaner is at work (nothing lost, cleaning finishes after the restart), and
time-based retention moving the log start offset under a consumer that then resets per
`auto.offset.reset`; tombstones kept for `delete.retention.ms` then removed; `retention.bytes`.

Records carry explicit timestamps an hour in the past, so `delete.retention.ms` and
`retention.ms` have expired for them the moment they land; `segment.ms` rolls on record
timestamps (Kafka's rule), so one record stamped "now" seals the segment before it."""

import asyncio
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from group_helpers import wait_until

KEYS = 1_000
UPDATES = 200_000
# The last update of every 50th key is a tombstone: 20 deleted keys.
DELETED = {k for k in range(KEYS) if k % 50 == 7}
HOUR_MS = 3_600_000
SEGMENT_BYTES = 1_048_576
SEGMENT_MS = 60_000


def key(k):
    return f"key-{k:04d}".encode()


def value(i):
    return f"v{i:07d}|".encode() + bytes([97 + i % 26]) * (30 + i % 40)


def final_value(k):
    """The value of key k after all UPDATES (None when the key ends with a tombstone)."""
    last = UPDATES - KEYS + k
    return None if k in DELETED else value(last)


def create_topic(bootstrap, topic, config, partitions=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                         config=config)], request_timeout=30)
    futs[topic].result(timeout=30)


def compacted_config():
    return {
        "cleanup.policy": "compact",
        "segment.bytes": str(SEGMENT_BYTES),
        "segment.ms": str(SEGMENT_MS),
        "delete.retention.ms": "1000",
        "min.cleanable.dirty.ratio": "0.01",
        "min.compaction.lag.ms": "0",
    }


def producer(bootstrap, extra=None):
    conf = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
            "batch.size": 131072, "enable.idempotence": False}
    conf.update(extra or {})
    return Producer(conf)


def produce_all(p, topics, items):
    """items: iterable of (key, value, timestamp_ms); every record goes to each of `topics`."""
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))

    for k, v, ts in items:
        for t in topics:
            while True:
                try:
                    p.produce(t, key=k, value=v, partition=0, timestamp=ts,
                              on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
    assert p.flush(120) == 0, "records undelivered after 120s"
    assert not errors, errors[:3]


def updates(base_ts):
    """UPDATES records cycling over the keys, timestamps increasing by 1 ms from base_ts."""
    for i in range(UPDATES):
        k = i % KEYS
        last_round = i >= UPDATES - KEYS
        v = None if (last_round and k in DELETED) else value(i)
        yield key(k), v, base_ts + i


def roll_record(n):
    """A record stamped now under its own key: its timestamp is far past segment.ms after the
    active segment's first record, so the segment holding the updates is sealed."""
    return f"roll-{n}".encode(), b"roll", int(time.time() * 1000)


def partition_bytes(broker, topic, partition=0):
    """Bytes of the partition's segment files (.log, .index, .timeindex, and any cleaner files)."""
    d = broker.log_dir / f"{topic}-{partition}"
    total = 0
    for f in d.iterdir():
        if ".log" in f.name or ".index" in f.name or ".timeindex" in f.name:
            try:
                total += f.stat().st_size
            except FileNotFoundError:
                pass  # unlinked by the cleaner meanwhile
    return total


def cleaner_files(broker, topic, partition=0):
    d = broker.log_dir / f"{topic}-{partition}"
    try:
        return sorted(f.name for f in d.iterdir()
                      if f.name.endswith((".cleaned", ".swap", ".deleted")))
    except FileNotFoundError:
        return []


def read_all(bootstrap, topic, timeout=60):
    """Every record of partition 0 from the beginning up to the high watermark, with a fresh
    confluent-kafka consumer: [(offset, key, value)]."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "lm-reader",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    try:
        tp = TopicPartition(topic, 0)
        low, high = c.get_watermark_offsets(tp, timeout=10)
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out = []
        deadline = time.monotonic() + timeout
        while (not out or out[-1][0] < high - 1) and time.monotonic() < deadline:
            for m in c.consume(num_messages=10000, timeout=0.5):
                assert m.error() is None, m.error()
                out.append((m.offset(), m.key(), m.value()))
        assert out and out[-1][0] == high - 1, \
            f"read up to {out[-1][0] if out else None}, high watermark {high}"
        return out
    finally:
        c.close()


def compaction_problems(records, extra_keys):
    """What is wrong with `records` (read from the compacted topic) as a fully cleaned log:
    a list of strings, empty when every live key appears exactly once with its final value,
    no deleted key appears and offsets ascend. `extra_keys` = {key: value} of the roll records."""
    problems = []
    offsets = [o for o, _, _ in records]
    if offsets != sorted(set(offsets)):
        problems.append("offsets not strictly ascending")
    seen = {}
    for o, k, v in records:
        seen.setdefault(k, []).append((o, v))
    dups = [k for k, vs in seen.items() if len(vs) > 1]
    if dups:
        problems.append(f"{len(dups)} keys appear more than once, e.g. {dups[:3]}")
    for k in range(KEYS):
        got = seen.get(key(k))
        want = final_value(k)
        if want is None:
            if got is not None:
                problems.append(f"deleted {key(k)} still present: {got[:2]}")
        elif got is None:
            problems.append(f"{key(k)} missing")
        elif got[-1][1] != want:
            problems.append(f"{key(k)}: latest {got[-1][1]!r}, want {want!r}")
    for k, v in extra_keys.items():
        if seen.get(k, [(None, None)])[-1][1] != v:
            problems.append(f"{k} missing or wrong")
    unknown = set(seen) - {key(k) for k in range(KEYS)} - set(extra_keys)
    if unknown:
        problems.append(f"unexpected keys {sorted(unknown)[:3]}")
    return problems


def latest_values_problems(records, extra_keys):
    """Weaker check for a log that may be only partly cleaned: the last record of every key is
    its final value (or a tombstone / absence for deleted keys)."""
    last = {}
    for _, k, v in records:
        last[k] = v
    problems = []
    for k in range(KEYS):
        want = final_value(k)
        got = last.get(key(k), None)
        if got != want:
            problems.append(f"{key(k)}: last {got!r}, want {want!r}")
    for k, v in extra_keys.items():
        if last.get(k) != v:
            problems.append(f"{k} missing or wrong")
    return problems


def wait_compacted(broker, topic, reference_bytes, extra_keys, timeout):
    """Waits until the partition holds < 10% of `reference_bytes` and reads as fully cleaned;
    returns the records read last."""
    deadline = time.monotonic() + timeout
    last = {"bytes": None, "problems": None}
    while time.monotonic() < deadline:
        now_bytes = partition_bytes(broker, topic)
        last["bytes"] = now_bytes
        if now_bytes < reference_bytes / 10:
            records = read_all(broker.bootstrap, topic)
            problems = compaction_problems(records, extra_keys)
            last["problems"] = problems
            if not problems:
                return records
        time.sleep(0.5)
    raise AssertionError(
        f"not compacted after {timeout}s: {last['bytes']} bytes on disk vs {reference_bytes} "
        f"uncompacted; last read problems {(last['problems'] or [])[:5]}; files "
        f"{sorted(f.name for f in (broker.log_dir / f'{topic}-0').iterdir())}\n"
        f"broker output:\n{broker.output_tail(30)}")


@pytest.mark.timeout(170)
def test_compaction_keeps_latest_per_key_and_reclaims_space(broker_factory):
    broker = broker_factory()
    topic, reference = "compacted", "uncompacted"
    create_topic(broker.bootstrap, topic, compacted_config())
    # The same stream to a non-compacting topic measures the uncompacted size (the cleaner
    # starts on sealed segments while the producer is still writing).
    create_topic(broker.bootstrap, reference, {"cleanup.policy": "delete", "retention.ms": "-1",
                                               "segment.bytes": str(SEGMENT_BYTES)})
    base_ts = int(time.time() * 1000) - HOUR_MS
    p = producer(broker.bootstrap)
    produce_all(p, [topic, reference], updates(base_ts))
    # Seal the last segment of updates.
    extra = dict([roll_record(0)[:2]])
    produce_all(p, [topic], [roll_record(0)])
    produced_at = time.monotonic()
    reference_bytes = partition_bytes(broker, reference)
    assert len(broker.segment_files(reference, 0)) >= 8, "expected many 1 MiB segments"
    assert reference_bytes > 8 * SEGMENT_BYTES

    records = wait_compacted(broker, topic, reference_bytes, extra, timeout=90)
    assert len(records) == KEYS - len(DELETED) + len(extra)
    final_bytes = partition_bytes(broker, topic)
    assert final_bytes < reference_bytes / 10, (final_bytes, reference_bytes)
    print(f"compacted {reference_bytes} -> {final_bytes} bytes in "
          f"{time.monotonic() - produced_at:.1f}s after the last update")

    # Another client library reads the same thing.
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                      group_id=None, consumer_timeout_ms=1000)
    try:
        tp = KTP(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = c.end_offsets([tp])[tp]
        got = []
        deadline = time.monotonic() + 30
        while (not got or got[-1][0] < end - 1) and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                got.extend((r.offset, r.key, r.value) for r in recs)
    finally:
        c.close()
    assert got == records, "kafka-python read something else than confluent-kafka"
    got = asyncio.run(asyncio.wait_for(aiokafka_read_all(broker.bootstrap, topic), 60))
    assert got == records, "aiokafka read something else than confluent-kafka"


async def aiokafka_read_all(bootstrap, topic):
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as ATP

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tp = ATP(topic, 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        end = (await c.end_offsets([tp]))[tp]
        got = []
        while not got or got[-1][0] < end - 1:
            for msgs in (await c.getmany(timeout_ms=500)).values():
                got.extend((m.offset, m.key, m.value) for m in msgs)
        return got
    finally:
        await c.stop()


@pytest.mark.timeout(170)
def test_kill9_during_cleaning_loses_nothing(broker_factory):
    broker = broker_factory()
    topic, reference = "compacted", "uncompacted"
    create_topic(broker.bootstrap, topic, compacted_config())
    create_topic(broker.bootstrap, reference, {"cleanup.policy": "delete", "retention.ms": "-1",
                                               "segment.bytes": str(SEGMENT_BYTES)})
    extra = {}
    caught = []  # (wanted suffix, cleaner files on disk at the kill)
    reference_bytes = None
    # Each round writes the whole update stream again (same final values), seals it, and kills
    # the broker when the cleaner's files show the wanted stage: output being written
    # (.cleaned), swapped in (.swap), old segments being unlinked (.deleted); or at once.
    for n, wanted in enumerate([".cleaned", ".swap", ".deleted", None]):
        base_ts = int(time.time() * 1000) - HOUR_MS
        p = producer(broker.bootstrap)
        produce_all(p, [topic, reference] if n == 0 else [topic], updates(base_ts))
        if reference_bytes is None:
            reference_bytes = partition_bytes(broker, reference)
        r = roll_record(n)
        extra[r[0]] = r[1]
        produce_all(p, [topic], [r])
        deadline = time.monotonic() + 3.0
        files = cleaner_files(broker, topic)
        while wanted and time.monotonic() < deadline and not any(f.endswith(wanted)
                                                                    for f in files):
            time.sleep(0.001)
            files = cleaner_files(broker, topic)
        broker.kill9()
        caught.append((wanted, files))
        broker.start()
        records = read_all(broker.bootstrap, topic)
        problems = latest_values_problems(records, extra)
        assert not problems, f"after kill -9 #{n + 1} (files then: {files}): {problems[:5]}"
        offsets = [o for o, _, _ in records]
        assert offsets == sorted(set(offsets)), "offsets not strictly ascending"
    print(f"cleaner files at each kill: {caught}")
    # Cleaning completes after the restarts.
    wait_compacted(broker, topic, reference_bytes, extra, timeout=90)
    assert not cleaner_files(broker, topic) or wait_until(
        lambda: not cleaner_files(broker, topic), 10, "cleaner leftovers to go")


def consumer_at(bootstrap, topic, offset, reset):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lm-{reset}",
                  "enable.auto.commit": False, "auto.offset.reset": reset,
                  "fetch.wait.max.ms": 100})
    c.assign([TopicPartition(topic, 0, offset)])
    return c


@pytest.mark.timeout(120)
def test_retention_moves_log_start_and_consumers_reset(broker_factory):
    broker = broker_factory({"log.retention.check.interval.ms": "1000"})
    topic = "retained"
    # Old records (an hour ago) expire at once; the recent ones stay for retention.ms.
    create_topic(broker.bootstrap, topic, {"cleanup.policy": "delete", "retention.ms": "30000",
                                           "segment.bytes": str(SEGMENT_BYTES),
                                           "segment.ms": str(SEGMENT_MS)})
    old_ts = int(time.time() * 1000) - HOUR_MS
    p = producer(broker.bootstrap)
    old_count = 40_000
    produce_all(p, [topic], ((key(i % KEYS), value(i), old_ts + i) for i in range(old_count)))
    segments_before = len(broker.segment_files(topic, 0))
    assert segments_before >= 3
    now = int(time.time() * 1000)
    recent_count = 100
    produce_all(p, [topic], ((b"recent", f"r{i}".encode(), now + i) for i in range(recent_count)))

    probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "lm-probe"})
    try:
        tp = TopicPartition(topic, 0)
        low, high = wait_until(
            lambda: (lambda lh: lh if lh[0] >= old_count else None)(
                probe.get_watermark_offsets(tp, timeout=10)),
            20, lambda: f"log start offset to pass {old_count} (now "
                        f"{probe.get_watermark_offsets(tp, timeout=10)}, segments "
                        f"{[f.name for f in broker.segment_files(topic, 0)]})")
    finally:
        probe.close()
    assert low == old_count, "only the old segments should go, the recent records stay"
    assert high == old_count + recent_count
    assert len(broker.segment_files(topic, 0)) < segments_before

    # earliest: from an old offset to the new log start.
    c = consumer_at(broker.bootstrap, topic, 5, "earliest")
    try:
        got = []
        deadline = time.monotonic() + 20
        while len(got) < recent_count and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.5):
                assert m.error() is None, m.error()
                got.append((m.offset(), m.value()))
        assert [o for o, _ in got] == list(range(low, high))
        assert [v for _, v in got] == [f"r{i}".encode() for i in range(recent_count)]
    finally:
        c.close()

    # kafka-python resets the same way (its own protocol code).
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                       group_id=None, auto_offset_reset="earliest")
    try:
        ktp = KTP(topic, 0)
        kc.assign([ktp])
        kc.seek(ktp, 5)
        got = []
        deadline = time.monotonic() + 20
        while len(got) < recent_count and time.monotonic() < deadline:
            for recs in kc.poll(timeout_ms=500).values():
                got.extend(r.offset for r in recs)
        assert got == list(range(low, high)), "kafka-python did not reset to the log start"
    finally:
        kc.close()

    # latest: from an old offset to the end; only records produced afterwards arrive.
    c = consumer_at(broker.bootstrap, topic, 5, "latest")
    try:
        # librdkafka's position() only moves with consumed messages, so produce one record
        # every half second until one arrives: the first must be a new one, nothing older.
        got = []
        sent = 0
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            produce_all(p, [topic], [(b"after", f"after-{sent}".encode(),
                                      int(time.time() * 1000))])
            sent += 1
            for m in c.consume(num_messages=10, timeout=0.5):
                assert m.error() is None, m.error()
                got.append((m.offset(), m.value()))
        assert got, "the latest consumer received nothing"
        first_offset, first_value = got[0]
        assert first_offset >= high and first_value.startswith(b"after-"), got[:3]
        assert [o for o, _ in got] == list(range(first_offset, first_offset + len(got)))
    finally:
        c.close()

    # error: librdkafka reports the out-of-range offset instead of resetting.
    c = consumer_at(broker.bootstrap, topic, 5, "error")
    try:
        err = None
        deadline = time.monotonic() + 20
        while err is None and time.monotonic() < deadline:
            for m in c.consume(num_messages=10, timeout=0.5):
                assert m.error() is not None, f"error reset delivered offset {m.offset()}"
                err = m.error()
        assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET, err
    finally:
        c.close()


@pytest.mark.timeout(60)
def test_tombstones_kept_for_delete_retention_then_removed(broker_factory):
    broker = broker_factory()
    topic = "tombstones"
    retention_ms = 6000
    cfg = compacted_config()
    cfg["delete.retention.ms"] = str(retention_ms)
    create_topic(broker.bootstrap, topic, cfg)
    # Recent timestamps this time: the tombstones must outlive the first cleaning.
    now = int(time.time() * 1000)
    p = producer(broker.bootstrap)
    items = [(key(k), value(r * 100 + k), now + r) for r in range(5) for k in range(100)]
    items += [(key(k), None, now + 5) for k in range(0, 100, 10)]
    produce_all(p, [topic], items)
    # Sealed by a record stamped past segment.ms (measured, as in Kafka, from the largest
    # timestamp of the segment's first batch, at most now + 5).
    roll = (b"roll", b"roll", now + SEGMENT_MS + 1000)
    produce_all(p, [topic], [roll])
    deleted = {key(k) for k in range(0, 100, 10)}

    def state():
        recs = read_all(broker.bootstrap, topic)
        keys = [k for _, k, _ in recs]
        return recs, len(keys) == len(set(keys))

    # First cleaning: one record per key, the tombstones still there (read before they are due).
    recs, _ = wait_until(lambda: (lambda s: s if s[1] else None)(state()), 20,
                               "the first cleaning to leave one record per key")
    read_at = int(time.time() * 1000)
    if read_at < now + 5 + retention_ms - 500:
        tomb = {k for _, k, v in recs if v is None}
        assert tomb == deleted, f"tombstones after the first cleaning: {sorted(tomb)}"
    else:
        pytest.skip("the first cleaning finished too late to observe the tombstones")
    live = {k: v for _, k, v in recs if v is not None}
    assert live == {**{key(k): value(400 + k) for k in range(100) if key(k) not in deleted},
                    b"roll": b"roll"}

    # Then, once delete.retention.ms has passed, the cleaner comes back for them.
    recs = wait_until(
        lambda: (lambda r: r if not any(v is None for _, _, v in r) else None)(
            read_all(broker.bootstrap, topic)),
        retention_ms / 1000 + 15, "the tombstones to be removed after delete.retention.ms")
    assert time.time() * 1000 >= now + 5 + retention_ms, "tombstones removed too early"
    assert {k: v for _, k, v in recs} == live


@pytest.mark.timeout(60)
def test_retention_bytes_bounds_the_partition(broker_factory):
    broker = broker_factory({"log.retention.check.interval.ms": "1000"})
    topic = "bounded"
    create_topic(broker.bootstrap, topic, {"cleanup.policy": "delete", "retention.ms": "-1",
                                           "retention.bytes": str(2 * SEGMENT_BYTES),
                                           "segment.bytes": str(SEGMENT_BYTES)})
    p = producer(broker.bootstrap)
    count = 80_000
    now = int(time.time() * 1000)
    produce_all(p, [topic], ((key(i % KEYS), value(i), now) for i in range(count)))

    def log_bytes():
        return sum(f.stat().st_size for f in broker.segment_files(topic, 0))

    wait_until(lambda: log_bytes() <= 3 * SEGMENT_BYTES, 15,
               lambda: f"the partition to shrink to retention.bytes + one segment "
                       f"({log_bytes()} bytes)")
    records = read_all(broker.bootstrap, topic)
    low = records[0][0]
    assert low > 0 and records[-1][0] == count - 1
    assert [o for o, _, _ in records] == list(range(low, count)), "a gap in a delete-policy log"
    assert all(v == value(o) for o, _, v in records)
