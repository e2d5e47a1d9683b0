"""Consumer groups with kafka-python (its own protocol code): an auto-committing group consumer,
a second member that joins and takes half the partitions without re-reading anything; the admin
client's group calls, including OffsetDelete (GROUP_SUBSCRIBED_TO_TOPIC while subscribed) and
the batched LeaveGroup of remove_group_members."""

import collections
import threading
import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, MemberToRemove
from kafka.errors import GroupIdNotFoundError, GroupSubscribedToTopicError, NoError
from kafka.structs import OffsetAndMetadata

from conftest import create_topics
from group_helpers import GROUP_PROPS, committed_offsets, produce_numbered, wait_until

pytestmark = pytest.mark.timeout(120)


class Member:
    """A kafka-python group consumer polled by its own thread."""

    def __init__(self, bootstrap, group, topic, name, **extra):
        conf = dict(
            bootstrap_servers=bootstrap,
            group_id=group,
            client_id=name,
            enable_auto_commit=True,
            auto_commit_interval_ms=200,
            auto_offset_reset="earliest",
            session_timeout_ms=10000,
            heartbeat_interval_ms=500,
            max_poll_records=100,
            fetch_max_wait_ms=100,
        )
        conf.update(extra)
        self.name = name
        self.consumer = KafkaConsumer(topic, **conf)
        self.records = []  # (partition, offset, value)
        self.assignment = set()
        self.assignments = []  # every distinct assignment seen, in order
        self.stopping = threading.Event()
        self.exc = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        try:
            while not self.stopping.is_set():
                # A long enough poll: kafka-python 3.0 may never fetch the committed offsets
                # (so never fetch) when a poll times out while its SyncGroup is in flight.
                for tp, recs in self.consumer.poll(timeout_ms=1000).items():
                    self.records.extend((r.partition, r.offset, int(r.value)) for r in recs)
                now = {tp.partition for tp in self.consumer.assignment()}
                if now != self.assignment:
                    self.assignment = now
                    self.assignments.append(sorted(now))
        except Exception as e:
            self.exc = e
        finally:
            try:
                self.consumer.close()  # commits the consumed positions (auto-commit on)
            except Exception as e:
                self.exc = self.exc or e

    def stop(self):
        self.stopping.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), f"{self.name} did not stop"
        if self.exc is not None:
            raise self.exc


def test_kafka_python_autocommit_second_member_takes_half(broker_factory):
    broker = broker_factory(GROUP_PROPS)
    topic, group, parts = "kp-group-topic", "kp-group", 4
    create_topics(broker.bootstrap, [(topic, parts)])
    produce_numbered(broker.bootstrap, topic, parts, 0, 4000)
    a = Member(broker.bootstrap, group, topic, "kp-a").start()
    b = None
    try:
        wait_until(lambda: a.exc or len(a.records) >= 4000, 60,
                   lambda: f"a to read 4000, has {len(a.records)} ({a.exc})")
        assert a.exc is None, a.exc
        assert a.assignment == set(range(parts))
        assert sorted(v for (_, _, v) in a.records) == list(range(4000))
        wait_until(lambda: committed_offsets(broker.bootstrap, group, topic, parts)
                   == {p: 1000 for p in range(parts)}, 15, "auto-commit of 1000 per partition")

        b = Member(broker.bootstrap, group, topic, "kp-b").start()
        wait_until(lambda: len(a.assignment) == 2 and len(b.assignment) == 2, 30,
                   lambda: f"a {a.assignment} and b {b.assignment} to own two each")
        assert a.assignment | b.assignment == set(range(parts))
        time.sleep(1.0)
        assert len(a.assignment) == 2 and len(b.assignment) == 2
        assert b.records == [], f"b re-read committed messages: {b.records[:5]}"

        produce_numbered(broker.bootstrap, topic, parts, 4000, 4000)
        wait_until(lambda: len(a.records) + len(b.records) >= 8000, 60,
                   lambda: f"8000 read, have {len(a.records) + len(b.records)}")
        time.sleep(0.5)
        vals = collections.Counter(v for (_, _, v) in a.records + b.records)
        assert sorted(vals) == list(range(8000))
        assert max(vals.values()) == 1, "a message was read twice"
        for m in (a, b):
            later = [(p, v) for (p, _, v) in m.records if v >= 4000]
            assert {p for p, _ in later} == m.assignment, (m.name, m.assignment)
            assert all(v % parts == p for p, v in later)
        a.stop()
        b.stop()
        assert committed_offsets(broker.bootstrap, group, topic, parts) == {
            p: 2000 for p in range(parts)}
    finally:
        for m in (a, b):
            if m is not None and m.thread.is_alive():
                m.stopping.set()
                m.thread.join(30)


def assigned(member):
    """Partitions in a DescribeGroups member assignment as kafka-python decodes it."""
    asg = member["member_assignment"]
    if hasattr(asg, "partitions"):
        return sorted((tp.topic, tp.partition) for tp in asg.partitions())
    return sorted((t["topic"], p) for t in asg["assigned_partitions"] for p in t["partitions"])


def test_kafka_python_admin_groups(broker_factory):
    broker = broker_factory(GROUP_PROPS)
    topic, unrelated, group = "kp-admin-topic", "kp-admin-unrelated", "kp-admin-group"
    create_topics(broker.bootstrap, [(topic, 2), (unrelated, 1)])
    produce_numbered(broker.bootstrap, topic, 2, 0, 200)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    m = None
    try:
        # An admin commit (generation -1) to an empty, unknown group creates it.
        res = admin.alter_group_offsets(group, {TopicPartition(unrelated, 0):
                                                OffsetAndMetadata(7, "note", -1)})
        assert res == {TopicPartition(unrelated, 0): NoError}, res
        got = admin.list_group_offsets(group)[group]
        assert got[TopicPartition(unrelated, 0)].offset == 7
        assert got[TopicPartition(unrelated, 0)].metadata == "note"

        m = Member(broker.bootstrap, group, topic, "kp-admin-m").start()
        wait_until(lambda: len(m.records) >= 200, 30, lambda: f"200 read, have {len(m.records)}")
        wait_until(lambda: committed_offsets(broker.bootstrap, group, topic, 2) == {0: 100, 1: 100},
                   15, "auto-commit")

        groups = admin.list_groups()
        mine = [g for g in groups if g["group_id"] == group]
        assert len(mine) == 1, groups
        assert mine[0]["protocol_type"] == "consumer"
        assert mine[0].get("group_state", "Stable") == "Stable", mine[0]
        stable = admin.list_groups(states_filter=["Stable"])
        assert group in [g["group_id"] for g in stable]
        assert group not in [g["group_id"] for g in admin.list_groups(states_filter=["Empty"])]

        d = admin.describe_groups([group])[group]
        assert d["error"] is None, d
        assert d["group_state"] == "Stable"
        assert d["protocol_type"] == "consumer"
        assert d["protocol_data"] == "range"
        assert len(d["members"]) == 1
        member = d["members"][0]
        assert member["client_id"] == "kp-admin-m"
        assert member["member_id"].startswith("kp-admin-m-")
        assert assigned(member) == [(topic, 0), (topic, 1)]

        # OffsetDelete: refused for the subscribed topic, done for the other one.
        res = admin.delete_group_offsets(group, [TopicPartition(topic, 0),
                                                 TopicPartition(unrelated, 0)])
        assert res == {TopicPartition(topic, 0): GroupSubscribedToTopicError,
                       TopicPartition(unrelated, 0): NoError}, res
        got = admin.list_group_offsets(group)[group]
        assert {(tp.topic, tp.partition): om.offset for tp, om in got.items()} == {
            (topic, 0): 100, (topic, 1): 100}
        with pytest.raises(GroupIdNotFoundError):
            admin.delete_group_offsets("kp-no-such-group", [TopicPartition(topic, 0)])

        # remove_group_members: a LeaveGroup v3+ on the member's behalf.
        old_id = member["member_id"]
        res = admin.remove_group_members(group, [MemberToRemove(member_id=old_id)])
        assert list(res.values()) == [NoError], res
        res = admin.remove_group_members(group, [MemberToRemove(member_id="kp-nobody")])
        assert [e.__name__ for e in res.values()] == ["UnknownMemberIdError"], res

        def rejoined_or_empty():
            dd = admin.describe_groups([group])[group]
            ids = [x["member_id"] for x in dd["members"]]
            return old_id not in ids and dd["group_state"] in ("Empty", "PreparingRebalance",
                                                               "CompletingRebalance", "Stable")
        wait_until(rejoined_or_empty, 15, "the removed member to be gone")
        m.stop()
        wait_until(lambda: admin.describe_groups([group])[group]["group_state"] == "Empty",
                   15, "the group to be Empty")
        res = admin.delete_group_offsets(group, [TopicPartition(topic, 1)])
        assert res == {TopicPartition(topic, 1): NoError}, res
        assert admin.delete_groups([group]) == {group: "OK"}
        assert admin.delete_groups([group]) == {group: "GroupIdNotFoundError"}
    finally:
        if m is not None and m.thread.is_alive():
            m.stopping.set()
            m.thread.join(30)
        admin.close()
