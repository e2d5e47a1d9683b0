"""Three combined nodes (process.roles=broker,controller), each its own process, form one
cluster (tools/cluster.py starts them from generated server.properties):

- (also with three controller-only and three broker-only nodes, the other KRaft layout)
  a topic of 12 partitions is spread over all three brokers; confluent-kafka and kafka-python
  produce to and consume from every partition, each client bootstrapped from one node only;
  the broker that does not lead a partition answers NOT_LEADER_OR_FOLLOWER;
- a consumer group of three members spans the brokers; its coordinator is the leader of the
  group's __consumer_offsets partition, which FindCoordinator names;
- admin calls sent to any node work (forwarded to the active controller);
- a consume-transform-produce transaction touches partitions on all three brokers;
- stopping and restarting every node keeps the same metadata and data; a node restarted with
  an empty directory catches up from the quorum's snapshot;
- the active controller killed with SIGKILL three times while topics are created and deleted:
  every acknowledged change is on every node, none twice (tools/cluster.py failover).
"""

import re
import socket
import struct
import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions, NewTopic)

from conftest import BINARY, ROOT, read_all

sys.path.insert(0, str(ROOT / "tools"))
from cluster import Cluster  # noqa: E402


SEPARATE = {"brokers": 3}  # 3 controller-only nodes (1-3) and 3 broker-only nodes (4-6)


@pytest.fixture
def cluster(tmp_path, request):
    """Three combined nodes; with the parameter {"brokers": 3}, three controller-only and three
    broker-only nodes; {"props": {...}} adds properties to every node."""
    param = getattr(request, "param", None) or {}
    (tmp_path / "cluster").mkdir()
    c = Cluster(3, str(BINARY), workdir=str(tmp_path / "cluster"), props=param.get("props"),
                brokers=param.get("brokers", 0)).start_all()
    c.wait_ready()
    yield c
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        for i in sorted(c.roles):
            try:
                print(f"--- node {i} log (tail) ---")
                print(open(c.log_path(i)).read()[-4000:])
            except OSError:
                pass
    c.close(keep=True)


def create(bootstrap, name, partitions, timeout=30):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout)


def produce_every_partition(bootstrap, topic, partitions, per_partition):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    errors = []
    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, value=f"{part}:{i}".encode(), partition=part,
                      on_delivery=lambda err, _m: err and errors.append(err))
    assert p.flush(60) == 0
    assert not errors, errors[:3]


def find_coordinator(port, group):
    """FindCoordinator v1 (group) on `port`: (error, node id)."""
    g = group.encode()
    body = struct.pack(">h", len(g)) + g + b"\0"
    header = struct.pack(">hhih", 10, 1, 3, 4) + b"test"
    req = header + body
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        buf = s.recv(size, socket.MSG_WAITALL)
    _corr, _throttle, err = struct.unpack_from(">iih", buf, 0)
    pos = 10
    n = struct.unpack_from(">h", buf, pos)[0]
    pos += 2 + max(n, 0)
    node = struct.unpack_from(">i", buf, pos)[0]
    return err, node


@pytest.mark.parametrize("cluster", [{}, SEPARATE], indirect=True, ids=["combined", "separate"])
def test_partitions_spread_over_three_brokers_and_every_client_reads_them(cluster):
    b1, b2, b3 = cluster.brokers()
    create(cluster.bootstrap_of([b2]), "spread", 12)
    leaders = cluster.wait_topic("spread", 12)
    assert sorted(set(leaders.values())) == [b1, b2, b3], leaders
    # Kafka's striped placement: 12 partitions, 3 brokers, 4 each.
    assert sorted(list(leaders.values()).count(b) for b in (b1, b2, b3)) == [4, 4, 4]

    produce_every_partition(cluster.bootstrap_of([b1]), "spread", 12, 100)
    got = read_all(cluster.bootstrap_of([b3]), "spread", 12, "read_uncommitted")
    for p in range(12):
        assert got[p] == [f"{p}:{i}" for i in range(100)], p

    # kafka-python, bootstrapped from another node.
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP
    kp = KafkaProducer(bootstrap_servers=cluster.bootstrap_of([b2]))
    for p in range(12):
        kp.send("spread", value=f"{p}:kp".encode(), partition=p)
    kp.flush(30)
    kp.close()
    kc = KafkaConsumer(bootstrap_servers=cluster.bootstrap_of([b2]), enable_auto_commit=False,
                       consumer_timeout_ms=5000)
    kc.assign([KTP("spread", p) for p in range(12)])
    kc.seek_to_beginning()
    seen = {p: [] for p in range(12)}
    deadline = time.monotonic() + 60
    while sum(map(len, seen.values())) < 12 * 101 and time.monotonic() < deadline:
        for tp, msgs in kc.poll(timeout_ms=500).items():
            seen[tp.partition].extend(m.value.decode() for m in msgs)
    kc.close()
    for p in range(12):
        assert seen[p] == [f"{p}:{i}" for i in range(100)] + [f"{p}:kp"], p

    # Every broker agrees on every partition's leader.
    for i in (b1, b2, b3):
        assert cluster.metadata(i, ["spread"])["topics"]["spread"] == leaders


def test_a_broker_refuses_partitions_it_does_not_lead(cluster):
    from cluster import list_offsets_ok
    create(cluster.bootstrap, "led", 3)
    leaders = cluster.wait_topic("led", 3)
    for p, leader in leaders.items():
        for node in (1, 2, 3):
            assert list_offsets_ok(cluster.ports[node], "led", p) == (node == leader), (p, node)


def test_a_consumer_group_of_three_spans_the_brokers(cluster):
    create(cluster.bootstrap, "grouped", 12)
    cluster.wait_topic("grouped", 12)
    produce_every_partition(cluster.bootstrap, "grouped", 12, 50)
    consumers = [Consumer({"bootstrap.servers": cluster.bootstrap_of([i]), "group.id": "trio",
                           "auto.offset.reset": "earliest", "enable.auto.commit": False})
                 for i in (1, 2, 3)]
    for c in consumers:
        c.subscribe(["grouped"])
    seen = {}
    deadline = time.monotonic() + 90
    while len(seen) < 600 and time.monotonic() < deadline:
        for c in consumers:
            for m in c.consume(num_messages=200, timeout=0.2):
                if m.error():
                    continue
                key = (m.partition(), m.value().decode())
                assert key not in seen, f"{key} consumed twice"
                seen[key] = c
    assert len(seen) == 600
    owners = [{p for (p, _), c2 in seen.items() if c2 is c} for c in consumers]
    assert all(owners), "every member gets partitions"
    assert set().union(*owners) == set(range(12))
    for c in consumers:
        c.commit(asynchronous=False)
    # The coordinator is the leader of the group's partition, whichever node is asked.
    answers = {find_coordinator(cluster.ports[i], "trio") for i in (1, 2, 3)}
    assert len(answers) == 1, answers
    err, node = answers.pop()
    assert err == 0 and node in (1, 2, 3)
    for c in consumers:
        c.close()
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_of([(node % 3) + 1])})
    from confluent_kafka import ConsumerGroupTopicPartitions
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("trio")])
    offsets = res["trio"].result(30).topic_partitions
    assert sorted((tp.partition, tp.offset) for tp in offsets) == [(p, 50) for p in range(12)]


@pytest.mark.parametrize("cluster", [{}, SEPARATE], indirect=True, ids=["combined", "separate"])
def test_admin_calls_to_any_node(cluster):
    brokers = cluster.brokers()
    for node in brokers:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_of([node])})
        name = f"admin-{node}"
        admin.create_topics([NewTopic(name, 2, 1)])[name].result(30)
        admin.create_partitions([NewPartitions(name, 4)])[name].result(30)
        r = ConfigResource("topic", name, set_config={"retention.ms": "3600000"})
        admin.alter_configs([r])[r].result(30)
        for i in brokers:
            cluster.wait_topic(name, 4)
            d = AdminClient({"bootstrap.servers": cluster.bootstrap_of([i])})
            cfg = d.describe_configs([ConfigResource("topic", name)])
            entries = list(cfg.values())[0].result(30)
            assert entries["retention.ms"].value == "3600000", (node, i)
    # kafka-python's admin too, to another node each time.
    from kafka.admin import KafkaAdminClient, NewTopic as KNewTopic
    ka = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_of([brokers[2]]))
    ka.create_topics([KNewTopic("kp-admin", 3, 1)])
    cluster.wait_topic("kp-admin", 3)
    first, second = f"admin-{brokers[0]}", f"admin-{brokers[1]}"
    ka.delete_topics([first, "kp-admin"])
    ka.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = [set(cluster.metadata(i)["topics"]) for i in brokers]
        if all(first not in n and "kp-admin" not in n for n in names):
            break
        time.sleep(0.05)  # polling for a condition
    assert all(first not in n and second in n for n in names), names


@pytest.mark.parametrize("cluster", [{}, SEPARATE], indirect=True, ids=["combined", "separate"])
def test_a_transaction_across_three_brokers(cluster):
    bs = cluster.bootstrap
    create(bs, "tin", 6)
    create(bs, "tout", 6)
    leaders = cluster.wait_topic("tout", 6)
    assert len(set(leaders.values())) == 3
    cluster.wait_topic("tin", 6)
    p = Producer({"bootstrap.servers": bs})
    for i in range(600):
        p.produce("tin", value=str(i).encode(), partition=i % 6)
    assert p.flush(30) == 0
    tp = Producer({"bootstrap.servers": bs, "transactional.id": "across"})
    tp.init_transactions(30)
    c = Consumer({"bootstrap.servers": bs, "group.id": "across-g", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    c.subscribe(["tin"])
    done, aborted = 0, 0
    deadline = time.monotonic() + 120
    while done < 600 and time.monotonic() < deadline:
        msgs = [m for m in c.consume(200, 1.0) if not m.error()]
        if not msgs:
            continue
        tp.begin_transaction()
        for m in msgs:
            tp.produce("tout", value=m.value(), partition=int(m.value()) % 6)
        tp.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata())
        if aborted < 2:
            tp.abort_transaction(30)
            aborted += 1
            for part in c.assignment():
                committed = c.committed([part], 10)[0].offset
                c.seek(TopicPartition(part.topic, part.partition, max(committed, 0)))
            continue
        tp.commit_transaction(30)
        done += len(msgs)
    c.close()
    assert done == 600
    got = read_all(bs, "tout", 6, "read_committed")
    values = sorted(int(v) for vs in got.values() for v in vs)
    assert values == list(range(600)), "every input record exactly once in the output"


def test_restart_keeps_metadata_and_data(cluster):
    create(cluster.bootstrap, "kept", 6)
    leaders = cluster.wait_topic("kept", 6)
    produce_every_partition(cluster.bootstrap, "kept", 6, 20)
    before = {i: cluster.metadata(i)["topics"] for i in (1, 2, 3)}
    cluster.stop_all()
    cluster.start_all()
    cluster.wait_ready()
    assert cluster.wait_topic("kept", 6) == leaders
    for i in (1, 2, 3):
        assert cluster.metadata(i)["topics"] == before[i]
    got = read_all(cluster.bootstrap, "kept", 6, "read_uncommitted")
    assert all(got[p] == [f"{p}:{i}" for i in range(20)] for p in range(6))


@pytest.mark.parametrize(
    "cluster", [{"props": {"metadata.log.max.record.bytes.between.snapshots": "4096"}}],
    indirect=True)
def test_a_node_with_an_empty_dir_catches_up_from_a_snapshot(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    names = [f"snap-{k}" for k in range(40)]
    for f in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        f.result(30)
    for n in names:
        cluster.wait_topic(n, 1)
    leader = cluster.active_controller()
    victim = next(i for i in (1, 2, 3) if i != leader)
    cluster.stop(victim)
    cluster.wipe(victim)
    cluster.start(victim)
    cluster.wait_ready()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        topics = cluster.metadata(victim)["topics"]
        if all(n in topics for n in names):
            break
        time.sleep(0.05)  # polling for a condition
    assert all(n in topics for n in names)
    log = open(cluster.log_path(victim)).read()
    assert "restored from the snapshot" in log, "caught up from a snapshot, not the whole log"


def test_killed_active_controller_keeps_every_acknowledged_change():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "cluster.py"), "failover", "--rounds", "3",
         "--binary", str(BINARY)],
        capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr[-4000:]
    m = re.search(r"median (\d+) ms, max (\d+) ms", out.stdout)
    assert m, out.stdout
    # Election timeout 1-1.5 s; forwarded changes wait for the new leader: well under 5 s.
    assert int(m.group(2)) < 5000, out.stdout
