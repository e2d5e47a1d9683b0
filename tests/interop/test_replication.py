"""Replicated partitions across three combined nodes, each its own process (tools/cluster.py),
with confluent-kafka as the client:

- the leader of a partition of a replication-factor-3 topic (min.insync.replicas=2) is killed
  with SIGKILL ten times (restarted after each kill) while an idempotent acks=all producer sends
  at a steady rate: every acknowledged record is read back afterwards exactly once, in order,
  and the replicas' logs end up with the same batches;
- two of three brokers stopped: acks=all producers get NOT_ENOUGH_REPLICAS and nothing
  acknowledged is lost; one back: production resumes;
- a follower stopped with SIGSTOP leaves the ISR and production goes on; after SIGCONT it
  catches up and rejoins;
- a consumer group keeps reading across the kill of its coordinator's broker.
"""

import os
import sys
import threading
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BINARY, ROOT
from test_cluster import find_coordinator

sys.path.insert(0, str(ROOT / "tools"))
from cluster import Cluster, leader_isr, wait_full_isr  # noqa: E402

# Quick failure detection, so that ten kills fit in a CI run.
PROPS = {
    "broker.heartbeat.interval.ms": "300",
    "broker.session.timeout.ms": "2000",
    "replica.lag.time.max.ms": "3000",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "3",
}


@pytest.fixture
def cluster(tmp_path, request):
    """Three combined nodes; with the parameter {"brokers": 3}, three controller-only nodes
    (1-3) and three broker-only nodes (4-6)."""
    param = getattr(request, "param", None) or {}
    (tmp_path / "cluster").mkdir()
    c = Cluster(3, str(BINARY), workdir=str(tmp_path / "cluster"), props=PROPS,
                brokers=param.get("brokers", 0),
                log_level=os.environ.get("CLUSTER_LOG_LEVEL", "info")).start_all()
    c.wait_ready()
    yield c
    c.close(keep=True)


def create(bootstrap, name, partitions, rf=3):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, rf)])[name].result(30)


def wait_isr(c, topic, size, timeout=30):
    """Until every running broker agrees on partition 0's leader and its ISR has `size`
    members: (leader, ISR)."""
    leader = wait_full_isr(c, topic, size, timeout)
    return leader, leader_isr(c, topic)[1]


class SteadyProducer:
    """An idempotent acks=all producer sending `rate` records a second to partition 0, recording
    which values were acknowledged (in acknowledgement order)."""

    def __init__(self, bootstrap, topic, rate=200):
        self.p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                           "acks": "all", "linger.ms": 2, "message.timeout.ms": 120000,
                           "topic.metadata.refresh.interval.ms": 1000,
                           "retry.backoff.ms": 50, "retry.backoff.max.ms": 200})
        self.topic, self.rate = topic, rate
        self.acked, self.errors = [], []
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def on_delivery(self, err, msg):
        if err:
            self.errors.append(err)
        else:
            self.acked.append(int(msg.value()))

    def run(self):
        t0 = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - t0) * self.rate)
            while self.sent < due:
                self.p.produce(self.topic, value=str(self.sent).encode(), partition=0,
                               on_delivery=self.on_delivery)
                self.sent += 1
            self.p.poll(0.005)

    def finish(self):
        self.stop.set()
        self.thread.join()
        assert self.p.flush(120) == 0


def read_all(bootstrap, topic, expected, timeout=60):
    """Partition 0 of `topic` from its start, without a group (no coordinator needed)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got.append(int(m.value()))
    # Anything more (a duplicate) would show up now.
    end = time.monotonic() + 1
    while time.monotonic() < end:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append(int(m.value()))
    c.close()
    return got


def segment_batches(c, node, topic, partition=0):
    d = os.path.join(c.workdir, f"node{node}", f"{topic}-{partition}")
    out = b""
    for name in sorted(os.listdir(d)):
        if name.endswith(".log"):
            with open(os.path.join(d, name), "rb") as f:
                out += f.read()
    return out


def test_leader_killed_ten_times_loses_nothing_acknowledged(cluster):
    create(cluster.bootstrap, "rep", 1)
    wait_isr(cluster, "rep", 3)
    prod = SteadyProducer(cluster.bootstrap, "rep")
    prod.thread.start()
    pauses = []
    for _ in range(10):
        leader, _ = wait_isr(cluster, "rep", 3)
        time.sleep(0.5)
        cluster.kill(leader)
        t0 = time.monotonic()
        mark = prod.sent  # the first record sent after the kill
        while not prod.acked or prod.acked[-1] < mark:
            assert time.monotonic() - t0 < 30, f"no acknowledgement after killing {leader}"
            time.sleep(0.01)  # polling for a condition
        pauses.append(time.monotonic() - t0)
        cluster.start(leader)
    wait_isr(cluster, "rep", 3)
    prod.finish()
    assert not prod.errors, prod.errors[:3]
    print(f"acks resumed after {sorted(round(p, 2) for p in pauses)} s")
    got = read_all(cluster.bootstrap, "rep", len(prod.acked))
    assert len(got) == len(set(got)), "a record was stored twice"
    assert got == sorted(got), "records out of order"
    assert set(prod.acked) <= set(got), f"lost: {sorted(set(prod.acked) - set(got))[:10]}"
    # Every replica holds the same batches.
    deadline = time.monotonic() + 20
    while True:
        logs = {n: segment_batches(cluster, n, "rep") for n in cluster.brokers()}
        if len(set(logs.values())) == 1:
            break
        assert time.monotonic() < deadline, {n: len(v) for n, v in logs.items()}
        time.sleep(0.1)  # polling: the last follower fetch


@pytest.mark.parametrize("cluster", [{"brokers": 3}], indirect=True)
def test_two_of_three_stopped_refuses_acks_all_and_resumes(cluster):
    # Brokers apart from the controllers: with two of three combined nodes gone the metadata
    # quorum itself would be lost, and no ISR could change.
    create(cluster.bootstrap, "two", 1)
    leader, _ = wait_isr(cluster, "two", 3)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                  "message.timeout.ms": 5000, "retries": 0})
    acked, errors = [], []

    def cb(err, msg):
        (errors if err else acked).append(err or int(msg.value()))
    for i in range(20):
        p.produce("two", value=str(i).encode(), partition=0, on_delivery=cb)
    assert p.flush(30) == 0 and len(acked) == 20, errors
    followers = [n for n in cluster.brokers() if n != leader]
    for n in followers:
        cluster.stop(n)
    wait_isr(cluster, "two", 1)
    for i in range(20, 25):
        p.produce("two", value=str(i).encode(), partition=0, on_delivery=cb)
    p.flush(30)
    codes = {e.code() for e in errors}
    assert KafkaError.NOT_ENOUGH_REPLICAS in codes, codes
    cluster.start(followers[0])
    wait_isr(cluster, "two", 2)
    errors.clear()
    p2 = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(100, 110):
        p2.produce("two", value=str(i).encode(), partition=0, on_delivery=cb)
    assert p2.flush(30) == 0 and not errors, errors
    got = read_all(cluster.bootstrap_of_brokers(), "two", 30)
    assert set(acked) <= set(got)


def test_a_consumer_group_survives_its_coordinators_broker(cluster):
    create(cluster.bootstrap, "grp", 3)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(300):
        p.produce("grp", value=str(i).encode(), partition=i % 3)
    assert p.flush(30) == 0
    conf = {"bootstrap.servers": cluster.bootstrap, "group.id": "survivors",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    c = Consumer(conf)
    c.subscribe(["grp"])
    seen = set()
    deadline = time.monotonic() + 30
    while len(seen) < 150 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen.add(int(m.value()))
            c.commit(m, asynchronous=False)
    assert len(seen) >= 150
    # The coordinator's broker goes away; the group keeps reading from its committed offsets.
    err, coordinator = find_coordinator(cluster.ports[1], "survivors")
    assert err == 0
    cluster.kill(coordinator)
    for i in range(300, 400):
        p.produce("grp", value=str(i).encode(), partition=i % 3)
    p.flush(60)
    deadline = time.monotonic() + 60
    while len(seen) < 400 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen.add(int(m.value()))
            try:
                c.commit(m, asynchronous=False)
            except Exception:
                pass  # retried with the next record while the coordinator moves
    c.close()
    assert seen >= set(range(400)), f"missing {sorted(set(range(400)) - seen)[:10]}"


def test_a_stopped_follower_leaves_the_isr_and_rejoins_after_sigcont(cluster):
    import signal
    create(cluster.bootstrap, "stall", 1)
    leader, _ = wait_isr(cluster, "stall", 3)
    follower = next(n for n in cluster.brokers() if n != leader)
    prod = SteadyProducer(cluster.bootstrap, "stall", rate=100)
    prod.thread.start()
    time.sleep(1)
    cluster.procs[follower].send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        while True:
            views = [cluster.metadata(n, ["stall"]) for n in cluster.brokers() if n != follower]
            isrs = [v["isr"]["stall"][0] for v in views if v and "stall" in v["isr"]]
            if isrs and all(follower not in members for members in isrs):
                break
            assert time.monotonic() - t0 < 30, f"ISR did not shrink: {isrs}"
            time.sleep(0.1)  # polling for a condition
        # Production goes on without it.
        mark = prod.sent
        t0 = time.monotonic()
        while not prod.acked or prod.acked[-1] < mark:
            assert time.monotonic() - t0 < 30, "acks=all stalled with the follower stopped"
            time.sleep(0.01)  # polling for a condition
    finally:
        cluster.procs[follower].send_signal(signal.SIGCONT)
    # It catches up and rejoins.
    wait_isr(cluster, "stall", 3, timeout=60)
    prod.finish()
    assert not prod.errors, prod.errors[:3]
    got = read_all(cluster.bootstrap, "stall", len(prod.acked))
    assert len(got) == len(set(got)) and got == sorted(got)
    assert set(prod.acked) <= set(got)
