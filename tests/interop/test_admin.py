"""Topic admin with confluent-kafka's AdminClient: create, describe, alter (whole set and
incremental), grow, delete records, delete and re-create a topic, describe the cluster. The broker
restarts between steps and nothing changes; `kcat -L` shows each state."""

import json
import shutil
import subprocess

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
TOPIC = "admin-life"
TIMEOUT = 30


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def kcat_topics(broker):
    """{topic: partition count} as `kcat -L -J` reports it (internal topics left out)."""
    proc = subprocess.run(
        [KCAT, "-L", "-J", "-b", broker.bootstrap],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = json.loads(proc.stdout)
    assert [b["id"] for b in md["brokers"]] == [1]
    return {t["topic"]: len(t["partitions"]) for t in md["topics"] if not t["topic"].startswith("__")}


def configs(broker, topic):
    """{name: (value, source)} of every config of a topic."""
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    a = admin(broker)  # kept alive until the answer is in
    (fut,) = a.describe_configs([res], request_timeout=TIMEOUT).values()
    return {name: (e.value, e.source) for name, e in fut.result(timeout=TIMEOUT).items()}


def overrides(broker, topic):
    return {
        n: v
        for n, (v, src) in configs(broker, topic).items()
        if src == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    }


def error_of(fut):
    with pytest.raises(KafkaException) as e:
        fut.result(timeout=TIMEOUT)
    return e.value.args[0].code()


def watermarks(broker, topic, partition):
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "admin-wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        c.close()


class State:
    """What the broker should show; `check` compares kcat, configs and watermarks."""

    def __init__(self):
        self.topics = {}
        self.overrides = {}
        self.watermarks = {}

    def check(self, broker):
        assert kcat_topics(broker) == self.topics
        for topic, want in self.overrides.items():
            assert overrides(broker, topic) == want, topic
        for (topic, p), wm in self.watermarks.items():
            assert watermarks(broker, topic, p) == wm, (topic, p)


def step(broker, state):
    """Checks the state, restarts the broker, checks it again."""
    state.check(broker)
    broker.restart()
    state.check(broker)


@pytest.mark.skipif(KCAT is None, reason="kcat is not installed (tools/test.sh installs it)")
def test_topic_lifecycle_with_admin_client(broker):
    state = State()
    a = admin(broker)

    # Create with a config override.
    (fut,) = a.create_topics(
        [NewTopic(TOPIC, num_partitions=2, replication_factor=1, config={"retention.ms": "86400000"})],
        request_timeout=TIMEOUT,
    ).values()
    fut.result(timeout=TIMEOUT)
    state.topics = {TOPIC: 2}
    state.overrides = {TOPIC: {"retention.ms": "86400000"}}
    step(broker, state)
    all_configs = configs(broker, TOPIC)
    assert all_configs["cleanup.policy"][0] == "delete"
    assert all_configs["cleanup.policy"][1] in (
        ConfigSource.DEFAULT_CONFIG.value,
        ConfigSource.STATIC_BROKER_CONFIG.value,
    )
    assert len(all_configs) >= 30

    # AlterConfigs replaces the whole set.
    a = admin(broker)
    res = ConfigResource(
        ConfigResource.Type.TOPIC, TOPIC, set_config={"segment.bytes": "1048576", "retention.ms": "3600000"}
    )
    (fut,) = a.alter_configs([res], request_timeout=TIMEOUT).values()
    fut.result(timeout=TIMEOUT)
    state.overrides[TOPIC] = {"segment.bytes": "1048576", "retention.ms": "3600000"}
    step(broker, state)

    # IncrementalAlterConfigs: APPEND, SET, DELETE; a bad value is INVALID_CONFIG.
    a = admin(broker)
    res = ConfigResource(
        ConfigResource.Type.TOPIC,
        TOPIC,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
            ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    (fut,) = a.incremental_alter_configs([res]).values()
    fut.result(timeout=TIMEOUT)
    bad = ConfigResource(
        ConfigResource.Type.TOPIC,
        TOPIC,
        incremental_configs=[ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)],
    )
    (fut,) = a.incremental_alter_configs([bad]).values()
    assert error_of(fut) == KafkaError.INVALID_CONFIG
    state.overrides[TOPIC] = {
        "segment.bytes": "1048576",
        "cleanup.policy": "delete,compact",
        "max.message.bytes": "2000000",
    }
    step(broker, state)

    # CreatePartitions grows; shrinking is INVALID_PARTITIONS.
    a = admin(broker)
    (fut,) = a.create_partitions([NewPartitions(TOPIC, 4)], request_timeout=TIMEOUT).values()
    fut.result(timeout=TIMEOUT)
    (fut,) = a.create_partitions([NewPartitions(TOPIC, 3)], request_timeout=TIMEOUT).values()
    assert error_of(fut) == KafkaError.INVALID_PARTITIONS
    state.topics[TOPIC] = 4
    step(broker, state)

    # DeleteRecords moves the log start offset.
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(100):
        p.produce(TOPIC, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=3)
    assert p.flush(30) == 0
    a = admin(broker)
    (fut,) = a.delete_records([TopicPartition(TOPIC, 3, 40)], request_timeout=TIMEOUT).values()
    assert fut.result(timeout=TIMEOUT).low_watermark == 40
    state.watermarks[(TOPIC, 3)] = (40, 100)
    step(broker, state)

    # DescribeCluster: this broker and the cluster id Metadata reports.
    a = admin(broker)
    cluster = a.describe_cluster(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    assert cluster.cluster_id == a.list_topics(timeout=TIMEOUT).cluster_id
    assert [n.id for n in cluster.nodes] == [1]
    assert cluster.nodes[0].port == broker.port
    assert cluster.controller.id == 1
    broker.restart()
    a = admin(broker)
    again = a.describe_cluster(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    assert again.cluster_id == cluster.cluster_id

    # DeleteTopics removes the topic and its logs; an unknown topic is an error.
    a = admin(broker)
    (fut,) = a.delete_topics([TOPIC], operation_timeout=TIMEOUT).values()
    fut.result(timeout=TIMEOUT)
    (fut,) = a.delete_topics(["no-such-topic"], operation_timeout=TIMEOUT).values()
    assert error_of(fut) == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert not list(broker.log_dir.glob(f"{TOPIC}-*"))
    state.topics = {}
    state.overrides = {}
    state.watermarks = {}
    step(broker, state)

    # Re-created: the new topic has none of the old data or configs.
    a = admin(broker)
    (fut,) = a.create_topics([NewTopic(TOPIC, num_partitions=4, replication_factor=1)]).values()
    fut.result(timeout=TIMEOUT)
    state.topics = {TOPIC: 4}
    state.overrides = {TOPIC: {}}
    state.watermarks = {(TOPIC, 3): (0, 0)}
    step(broker, state)
