"""Consumer groups with confluent-kafka (librdkafka): the range, roundrobin and cooperative-sticky
assignors share a 6-partition topic among three members; every message is consumed exactly once
with synchronous, asynchronous and explicit-offset commits; committed() and position() agree;
a member that closes hands its partitions over in one rebalance; the broker is restarted under
the group (SIGTERM, kill -9) and the consumers resume from the committed offsets; a static member
restarts without disturbing the others; the AdminClient lists, describes and deletes groups and
lists and alters their offsets (offset deletion is in test_groups_kafka_python.py: confluent-kafka
for Python has no delete_consumer_group_offsets)."""

import collections
import struct
import time

import pytest
from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from conftest import create_topics
from group_helpers import (
    GROUP_PROPS,
    GroupConsumer,
    RawClient,
    committed_offsets,
    consumer_assignment,
    consumer_subscription,
    produce_numbered,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

PARTS = 6


def owned(consumers):
    return [c.partitions() for c in consumers]


def assert_split(consumers, sizes, what):
    sets = owned(consumers)
    assert sorted(len(s) for s in sets) == sorted(sizes), f"{what}: assignments {sets}"
    union = set().union(*sets)
    assert union == set(range(PARTS)), f"{what}: assignments {sets} do not cover all"
    assert sum(len(s) for s in sets) == PARTS, f"{what}: overlapping assignments {sets}"


def wait_split(consumers, sizes, timeout, what):
    def ok():
        for c in consumers:
            c.check()
        sets = owned(consumers)
        return (sorted(len(s) for s in sets) == sorted(sizes)
                and set().union(*sets) == set(range(PARTS)))
    wait_until(ok, timeout, lambda: f"{what}: assignments {owned(consumers)}")
    assert_split(consumers, sizes, what)


def wait_consumed(consumers, total, timeout, what):
    def n():
        for c in consumers:
            c.check()
        return len(set(v for c in consumers for v in c.values()))
    wait_until(lambda: n() >= total, timeout, lambda: f"{what}: {n()} of {total} consumed")


def assert_exactly_once(consumers, expected, what):
    vals = collections.Counter(v for c in consumers for v in c.values())
    dups = sorted(v for v, k in vals.items() if k > 1)
    missing = sorted(set(expected) - set(vals))
    extra = sorted(set(vals) - set(expected))
    assert not dups, f"{what}: {len(dups)} read twice, first {dups[:10]}"
    assert not missing, f"{what}: {len(missing)} never read, first {missing[:10]}"
    assert not extra, f"{what}: unexpected values {extra[:10]}"


def committed_and_position(c, topic, parts):
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    com = c.call(lambda k: k.committed(tps, timeout=10))
    pos = c.call(lambda k: k.position(tps))
    return ({tp.partition: tp.offset for tp in com}, {tp.partition: tp.offset for tp in pos})


def wait_commits_settled(consumers, topic, end, timeout=20):
    """Every owned partition: committed() == position() == the end offset."""
    last = {}

    def ok():
        for c in consumers:
            parts = c.partitions()
            com, pos = committed_and_position(c, topic, parts)
            last[c.name] = (com, pos)
            if com != pos or any(com[p] != end[p] for p in parts):
                return False
        return True
    wait_until(ok, timeout, lambda: f"committed()/position() to reach {end}: {last}", step=0.3)


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_assignors_exactly_once_and_leave(broker_factory, strategy):
    broker = broker_factory(GROUP_PROPS)
    topic = f"groups-{strategy}"
    group = f"group-{strategy}"
    create_topics(broker.bootstrap, [(topic, PARTS)])
    modes = ["sync", "async", "offsets"]
    cs = [GroupConsumer(broker.bootstrap, group, [topic], f"{strategy}-{m}", strategy=strategy,
                        commit=m, batch=200) for m in modes]
    try:
        for c in cs:
            c.start()
        wait_split(cs, [2, 2, 2], 30, "three members")
        sets = sorted(sorted(s) for s in owned(cs))
        if strategy == "range":
            assert sets == [[0, 1], [2, 3], [4, 5]], sets
        elif strategy == "roundrobin":
            assert sets == [[0, 3], [1, 4], [2, 5]], sets
        time.sleep(1.0)  # stable: no further rebalance
        assert_split(cs, [2, 2, 2], "three members after 1s")

        produce_numbered(broker.bootstrap, topic, PARTS, 0, 6000)
        wait_consumed(cs, 6000, 60, "phase 1")
        assert_exactly_once(cs, range(6000), "phase 1")
        for c in cs:
            assert not c.errors, f"{c.name}: {c.errors[:3]}"
            assert not c.failed_batches, f"{c.name}: commit failed {c.failed_batches[0][1]}"
            mine = c.partitions()
            for (_, p, o, v) in c.consumed:
                assert p in mine, f"{c.name} read partition {p}, owns {mine}"
                assert v % PARTS == p
            by = collections.defaultdict(list)
            for (_, p, o, _) in c.consumed:
                by[p].append(o)
            for p, offs in by.items():
                assert offs == list(range(1000)), f"{c.name}[{p}] offsets not 0..999 in order"
        wait_commits_settled(cs, topic, {p: 1000 for p in range(PARTS)})
        # _NO_OFFSET: a local no-op (nothing new stored since the previous async commit).
        errs = [e for e in cs[1].commit_callbacks
                if e[0] is not None and e[0].code() != KafkaError._NO_OFFSET]
        assert not errs, f"async commit errors: {errs[:3]}"
        assert cs[1].commit_callbacks, "no async commit callback"

        # One member leaves (LeaveGroup): the others take its partitions in one rebalance,
        # well before the 10 s session timeout would have expired.
        leaving, rest = cs[2], cs[:2]
        before = [c.assign_count() for c in rest]
        t0 = time.monotonic()
        leaving.stop()
        wait_split(rest, [3, 3], 8, "after LeaveGroup")
        took = time.monotonic() - t0
        assert took < 8, f"rebalance after LeaveGroup took {took:.1f}s"
        time.sleep(1.0)
        assert_split(rest, [3, 3], "after LeaveGroup + 1s")
        after = [c.assign_count() for c in rest]
        assert [a - b for a, b in zip(after, before)] == [1, 1], (
            f"assign callbacks per survivor {before} -> {after}: not one rebalance; "
            f"events {[c.events for c in rest]}")

        produce_numbered(broker.bootstrap, topic, PARTS, 6000, 6000)
        wait_consumed(cs, 12000, 60, "phase 2")
        assert_exactly_once(cs, range(12000), "phase 2")
        wait_commits_settled(rest, topic, {p: 2000 for p in range(PARTS)})
        assert committed_offsets(broker.bootstrap, group, topic, PARTS) == {
            p: 2000 for p in range(PARTS)}
    finally:
        for c in cs:
            try:
                c.stop()
            except Exception:
                pass


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_broker_restart_resumes_from_committed(broker_factory, how):
    props = dict(GROUP_PROPS)
    if how == "kill9":
        props["log.flush.interval.messages"] = "1"
    broker = broker_factory(props)
    topic, group, total = f"restart-{how}", f"restart-group-{how}", 6000
    create_topics(broker.bootstrap, [(topic, PARTS)])
    # Small record batches, so that small fetches interleave the partitions.
    produce_numbered(broker.bootstrap, topic, PARTS, 0, total, {"batch.num.messages": 10})

    def bounce():
        if how == "sigterm":
            assert broker.stop() == 0, broker.output_tail()
        else:
            broker.kill9()
        broker.start()

    # Small fetches interleave the partitions; 50 messages and 0.1 s per batch: the restart
    # lands in the middle of every partition.
    small = {"max.partition.fetch.bytes": 1024, "queued.min.messages": 100}
    old = [GroupConsumer(broker.bootstrap, group, [topic], f"old{i}", commit="offsets", batch=50,
                         delay=0.1, extra=small) for i in range(2)]
    fresh = None
    try:
        for c in old:
            c.start()
        wait_split(old, [3, 3], 30, "two members")
        wait_consumed(old, total // 3, 60, "before the restart")
        bounce()
        wait_consumed(old, 2 * total // 3, 90, f"after the {how} restart")
        assert len(set(v for c in old for v in c.values())) < total, "restart was not in the middle"
        for c in old:
            c.signal_stop(uncommitted_last=True)
        for c in old:
            c.stop()
        read_old = [r for c in old for r in c.consumed]
        uncommitted = {(p, o) for c in old for (_, p, o) in (c.last_batch_uncommitted or [])}
        failed = {(p, o) for c in old for batch, _ in c.failed_batches for (_, p, o) in batch}

        # Read twice before the second restart: only messages whose commit failed (or the last
        # batches, deliberately not committed, when the other member took them over).
        counts = collections.Counter((p, o) for (_, p, o, _) in read_old)
        dups = {k for k, n in counts.items() if n > 1}
        assert dups <= failed | uncommitted, (
            f"{len(dups - failed - uncommitted)} messages re-read although their commit "
            f"succeeded, e.g. {sorted(dups - failed - uncommitted)[:5]}; failed commits: "
            f"{[e for c in old for _, e in c.failed_batches][:3]}")

        ok_commit = collections.defaultdict(lambda: -1001)  # -1001: nothing committed
        tried = collections.defaultdict(set)
        for c in old:
            for (_, p, o) in c.committed_ok:
                ok_commit[p] = max(ok_commit[p], o)
            for batch, _ in c.failed_batches:
                for (_, p, o) in batch:
                    tried[p].add(o + 1)
        c1 = committed_offsets(broker.bootstrap, group, topic, PARTS)
        history = {c.name: (summary(c), c.events) for c in old}
        for p in range(PARTS):
            assert c1[p] >= ok_commit[p], (
                f"partition {p}: committed {c1[p]} < acked {ok_commit[p]}; {history}")
            assert c1[p] == ok_commit[p] or c1[p] in tried[p], (
                f"partition {p}: committed {c1[p]} was never committed (acked max {ok_commit[p]}); "
                f"{history}")
        # (a design check of this test: most partitions are mid-stream at the second restart)
        assert sum(0 < c1[p] < 1000 for p in range(PARTS)) >= 3, f"not mid-stream: {c1}; {history}"
        print(f"restart {how}: committed {c1}, {len(failed)} in failed commits, "
              f"{len(dups)} re-read, {len(uncommitted)} left uncommitted")
        bounce()
        c2 = committed_offsets(broker.bootstrap, group, topic, PARTS)
        assert c2 == c1, f"committed offsets changed over a {how} restart: {c1} -> {c2}"

        # One new member resumes exactly at the committed offsets.
        fresh = GroupConsumer(broker.bootstrap, group, [topic], "new", commit="sync").start()
        start = {p: max(c2[p], 0) for p in range(PARTS)}  # -1001: none, auto.offset.reset
        need = sum(1000 - start[p] for p in range(PARTS))
        wait_until(lambda: len(fresh.consumed) >= need, 60,
                   lambda: f"the new member read {len(fresh.consumed)} of {need}")
        time.sleep(0.5)
        by = collections.defaultdict(list)
        for (_, p, o, _) in fresh.consumed:
            by[p].append(o)
        for p in range(PARTS):
            assert by[p] == list(range(start[p], 1000)), (
                f"partition {p}: the new member read {len(by[p])} offsets "
                f"{by[p][:3]}..., expected {start[p]}..999 once each")
        assert {(p, o) for (p, o) in uncommitted if o >= start[p]} <= {
            (p, o) for (_, p, o, _) in fresh.consumed}
        everything = {v for (_, _, _, v) in read_old} | set(fresh.values())
        assert everything == set(range(total)), f"{total - len(everything)} messages lost"
        wait_until(lambda: committed_offsets(broker.bootstrap, group, topic, PARTS)
                   == {p: 1000 for p in range(PARTS)}, 20, "final commits")
    finally:
        for c in old + ([fresh] if fresh else []):
            try:
                c.stop()
            except Exception:
                pass


def summary(c):
    """Per partition: (first, last, count) of the offsets a GroupConsumer read."""
    by = collections.defaultdict(list)
    for (_, p, o, _) in c.consumed:
        by[p].append(o)
    return {p: (min(o), max(o), len(o)) for p, o in sorted(by.items())}


def test_static_member_restart_keeps_assignment(broker_factory):
    broker = broker_factory(GROUP_PROPS)
    topic, group = "static-topic", "static-group"
    create_topics(broker.bootstrap, [(topic, PARTS)])
    static = {"group.instance.id": "static-a", "session.timeout.ms": 15000}
    b = GroupConsumer(broker.bootstrap, group, [topic], "dynamic-b", commit="sync")
    a = GroupConsumer(broker.bootstrap, group, [topic], "static-a", commit="sync", extra=static)
    a2 = None
    try:
        b.start()
        wait_split([b], [6], 30, "b alone")
        a.start()
        wait_split([a, b], [3, 3], 30, "a and b")
        time.sleep(1.5)
        a_parts, b_parts = a.partitions(), b.partitions()
        b_events = list(b.events)
        desc = describe(broker.bootstrap, group)
        inst = sorted(str(m.group_instance_id) for m in desc.members)
        assert inst == ["None", "static-a"], f"group.instance.id in DescribeGroups: {inst}"

        a.stop()  # a static member sends no LeaveGroup: nothing happens to b
        time.sleep(2.0)
        a2 = GroupConsumer(broker.bootstrap, group, [topic], "static-a", commit="sync",
                           extra=static).start()
        wait_until(lambda: a2.partitions(), 15, "the restarted static member's assignment")
        assert a2.partitions() == a_parts, f"static member got {a2.partitions()}, had {a_parts}"
        time.sleep(4.0)  # b heartbeats every 0.5 s: a rebalance would reach it by now
        assert b.events == b_events, f"b saw callbacks again: {b.events[len(b_events):]}"
        assert b.partitions() == b_parts
        desc = describe(broker.bootstrap, group)
        assert desc.state == ConsumerGroupState.STABLE, desc.state
        assert len(desc.members) == 2

        # Messages on every partition reach their owner.
        produce_numbered(broker.bootstrap, topic, PARTS, 0, 600)
        wait_consumed([a2, b], 600, 30, "after the static restart")
        assert_exactly_once([a2, b], range(600), "after the static restart")
        assert {p for (_, p, _, _) in a2.consumed} == a_parts
    finally:
        for c in (a, b, a2):
            if c is not None:
                try:
                    c.stop()
                except Exception:
                    pass


def describe(bootstrap, group):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.describe_consumer_groups([group], request_timeout=15)[group].result(timeout=15)


def test_admin_list_describe_alter_delete(broker_factory):
    broker = broker_factory(GROUP_PROPS)
    topic, other, group = "admin-topic", "admin-other", "admin-group"
    create_topics(broker.bootstrap, [(topic, 4), (other, 1)])
    produce_numbered(broker.bootstrap, topic, 4, 0, 400)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    cs = [GroupConsumer(broker.bootstrap, group, [topic], f"admin-c{i}", commit="sync")
          for i in range(2)]
    try:
        for c in cs:
            c.start()
        wait_until(lambda: len(cs[0].partitions()) + len(cs[1].partitions()) == 4
                   and cs[0].partitions() and cs[1].partitions(), 30, "two members")
        wait_consumed(cs, 400, 30, "admin group")
        wait_until(lambda: committed_offsets(broker.bootstrap, group, topic, 4)
                   == {p: 100 for p in range(4)}, 20, "commits")

        listed = admin.list_consumer_groups(request_timeout=15).result(timeout=15)
        assert not listed.errors, listed.errors
        mine = [g for g in listed.valid if g.group_id == group]
        assert len(mine) == 1, [g.group_id for g in listed.valid]
        assert mine[0].state == ConsumerGroupState.STABLE, mine[0].state
        assert mine[0].is_simple_consumer_group is False
        only_empty = admin.list_consumer_groups(
            request_timeout=15, states={ConsumerGroupState.EMPTY}).result(timeout=15)
        assert group not in [g.group_id for g in only_empty.valid]
        only_stable = admin.list_consumer_groups(
            request_timeout=15, states={ConsumerGroupState.STABLE}).result(timeout=15)
        assert group in [g.group_id for g in only_stable.valid]

        d = describe(broker.bootstrap, group)
        assert d.group_id == group
        assert d.state == ConsumerGroupState.STABLE
        assert d.partition_assignor == "range"
        assert d.is_simple_consumer_group is False
        assert sorted(m.client_id for m in d.members) == ["admin-c0", "admin-c1"]
        assert d.coordinator.id == 1 and d.coordinator.port == broker.port
        got = {}
        for m in d.members:
            assert m.member_id.startswith(m.client_id + "-"), m.member_id
            assert m.host.lstrip("/") == "127.0.0.1", m.host
            assert m.group_instance_id is None
            got[m.client_id] = {tp.partition for tp in m.assignment.topic_partitions
                                if tp.topic == topic}
        assert got == {c.name: c.partitions() for c in cs}, (got, [c.partitions() for c in cs])

        offs = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=15)[group].result(timeout=15)
        assert {(tp.topic, tp.partition): tp.offset for tp in offs.topic_partitions} == {
            (topic, p): 100 for p in range(4)}

        # Altering offsets of an active group (generation -1 commit): UNKNOWN_MEMBER_ID.
        assert alter_error(admin, group, [TopicPartition(topic, 0, 5)]) == \
            KafkaError.UNKNOWN_MEMBER_ID
        # Deleting a non-empty group: NON_EMPTY_GROUP.
        fut = admin.delete_consumer_groups([group], request_timeout=15)[group]
        with pytest.raises(Exception) as ei:
            fut.result(timeout=15)
        assert _code(ei.value) == KafkaError.NON_EMPTY_GROUP, ei.value

        for c in cs:
            c.stop()
        wait_until(lambda: describe(broker.bootstrap, group).state == ConsumerGroupState.EMPTY,
                   15, "group EMPTY after both members left")
        d = describe(broker.bootstrap, group)
        assert d.members == []
        assert d.partition_assignor == ""

        assert alter_error(admin, group, [TopicPartition(topic, 0, 5),
                                          TopicPartition(other, 0, 0)]) is None
        after = committed_offsets(broker.bootstrap, group, topic, 4)
        assert after == {0: 5, 1: 100, 2: 100, 3: 100}, after
        assert committed_offsets(broker.bootstrap, group, other, 1) == {0: 0}
        offs = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0),
                                                  TopicPartition(topic, 3)])],
            request_timeout=15)[group].result(timeout=15)
        assert [(tp.partition, tp.offset) for tp in offs.topic_partitions] == [(0, 5), (3, 100)]

        # A new member resumes from the altered offset.
        c = GroupConsumer(broker.bootstrap, group, [topic], "admin-c2", commit=None)
        cs.append(c)
        c.start()
        wait_until(lambda: len(c.consumed) >= 95, 30, "re-read of partition 0 from 5")
        time.sleep(1.0)
        c.stop()
        assert sorted(o for (_, p, o, _) in c.consumed if p == 0) == list(range(5, 100))
        assert [r for r in c.consumed if r[1] != 0] == []

        res = admin.delete_consumer_groups([group], request_timeout=15)[group].result(timeout=15)
        assert res is None
        listed = admin.list_consumer_groups(request_timeout=15).result(timeout=15)
        assert group not in [g.group_id for g in listed.valid]
        assert committed_offsets(broker.bootstrap, group, topic, 4) == {p: -1001 for p in range(4)}
        fut = admin.delete_consumer_groups([group], request_timeout=15)[group]
        with pytest.raises(Exception) as ei:
            fut.result(timeout=15)
        assert _code(ei.value) == KafkaError.GROUP_ID_NOT_FOUND, ei.value
        # A deleted group stays deleted over a restart (its tombstones are replayed).
        broker.restart()
        listed = admin.list_consumer_groups(request_timeout=15).result(timeout=15)
        assert group not in [g.group_id for g in listed.valid]
        assert committed_offsets(broker.bootstrap, group, topic, 4) == {p: -1001 for p in range(4)}
    finally:
        for c in cs:
            try:
                c.stop()
            except Exception:
                pass


def alter_error(admin, group, tps):
    """alter_consumer_group_offsets: None on success, else the first error code."""
    fut = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)],
                                             request_timeout=15)[group]
    try:
        res = fut.result(timeout=15)
    except Exception as e:
        code = _code(e)
        assert code is not None, e
        return code
    errs = [tp.error for tp in res.topic_partitions if tp.error is not None]
    return errs[0].code() if errs else None


def _code(exc):
    arg = exc.args[0] if getattr(exc, "args", None) else None
    return arg.code() if isinstance(arg, KafkaError) else None


def test_raw_bad_group_requests(broker_factory):
    """Kafka's error codes for requests a well-behaved client never sends; the broker lives on."""
    broker = broker_factory(GROUP_PROPS)
    topic, group = "raw-topic", "raw-group"
    create_topics(broker.bootstrap, [(topic, 2)])
    raw = RawClient(broker.port)
    try:
        assert raw.find_coordinator(group) == (0, 1, "127.0.0.1", broker.port)
        meta = consumer_subscription([topic])
        err, gen, proto, leader, member, members = raw.join_until_member(group, protocol_meta=meta)
        assert (err, proto, leader) == (0, "range", member), (err, proto, leader, member)
        assert gen >= 1
        assert members == [(member, None, meta)]

        # Still CompletingRebalance: the leader has not synced yet.
        assert raw.sync_group(group, gen, "nobody")[0] == 25  # UNKNOWN_MEMBER_ID
        assert raw.sync_group(group, gen + 1, member)[0] == 22  # ILLEGAL_GENERATION
        assert raw.sync_group(group, gen - 1, member)[0] == 22
        assignment = consumer_assignment(topic, [0, 1])
        assert raw.sync_group(group, gen, member, [(member, assignment)]) == (0, assignment)
        # Stable now.
        assert raw.heartbeat(group, gen, member) == 0
        assert raw.heartbeat(group, gen - 1, member) == 22
        assert raw.heartbeat(group, gen, "nobody") == 25
        assert raw.heartbeat("raw-no-such-group", 1, "nobody") == 25
        assert raw.sync_group(group, gen - 1, member)[0] == 22
        assert raw.sync_group(group, gen, "nobody")[0] == 25

        res = raw.offset_commit(group, {topic: {0: 5}, "raw-no-such-topic": {0: 1}},
                                generation=gen, member_id=member)
        assert res == {(topic, 0): 0, ("raw-no-such-topic", 0): 3}, res
        res = raw.offset_commit(group, {topic: {1: 6}}, generation=gen + 7, member_id=member)
        assert res == {(topic, 1): 22}, res
        res = raw.offset_commit(group, {topic: {1: 6}}, generation=gen, member_id="nobody")
        assert res == {(topic, 1): 25}, res
        # An admin-style commit (generation -1, no member) to a non-empty group.
        assert raw.offset_commit(group, {topic: {1: 6}}) == {(topic, 1): 25}

        assert broker.proc.poll() is None, "broker died"

        err, lerrs = raw.leave_group(group, "nobody")
        assert (err, lerrs) == (0, [("nobody", None, 25)]), (err, lerrs)
        err, lerrs = raw.leave_group(group, member)
        assert (err, lerrs) == (0, [(member, None, 0)]), (err, lerrs)
    finally:
        raw.close()
    # The broker still serves groups, and the commit survives a restart.
    broker.restart()
    assert committed_offsets(broker.bootstrap, group, topic, 2) == {0: 5, 1: -1001}
    assert describe(broker.bootstrap, group).state == ConsumerGroupState.EMPTY


def test_raw_oversized_member_metadata(broker_factory):
    """4 MiB of member metadata: the group record cannot be stored in __consumer_offsets (1 MiB
    record limit). Kafka accepts the JoinGroup and fails the leader's SyncGroup with
    UNKNOWN_SERVER_ERROR (-1) when it cannot store the group; an earlier refusal is fine too.
    Either way the broker stays up, serves other groups and restarts cleanly."""
    broker = broker_factory(GROUP_PROPS)
    topic = "raw-big-topic"
    create_topics(broker.bootstrap, [(topic, 1)])
    big = RawClient(broker.port, client_id="raw-big")
    try:
        user_data = struct.pack(">i", 4 << 20) + b"u" * (4 << 20)
        huge = consumer_subscription([topic])[:-4] + user_data
        err, gen, _, _, member, _ = big.join_until_member("raw-big-group", protocol_meta=huge)
        if err == 0:
            serr, _ = big.sync_group("raw-big-group", gen, member,
                                     [(member, consumer_assignment(topic, [0]))])
            assert serr != 0, (
                "SyncGroup answered 0 for a group whose 4 MiB record could not be stored; "
                f"broker output:\n{broker.output_tail(5)}")
        else:
            # UNKNOWN_SERVER_ERROR, MESSAGE_TOO_LARGE, INVALID_REQUEST
            assert err in (-1, 10, 42), f"JoinGroup error {err}"
    except ConnectionError:
        pass  # closing the connection is a refusal too
    finally:
        big.close()
    assert broker.proc.poll() is None, "broker died"
    raw = RawClient(broker.port)
    try:
        meta = consumer_subscription([topic])
        err, gen, _, _, member, _ = raw.join_until_member("raw-small-group", protocol_meta=meta)
        assert err == 0
        assignment = consumer_assignment(topic, [0])
        assert raw.sync_group("raw-small-group", gen, member, [(member, assignment)]) == (
            0, assignment)
        assert raw.offset_commit("raw-small-group", {topic: {0: 3}}, generation=gen,
                                 member_id=member) == {(topic, 0): 0}
    finally:
        raw.close()
    broker.restart()
    assert committed_offsets(broker.bootstrap, "raw-small-group", topic, 1) == {0: 3}
