// kafkajs against the release broker: admin createTopics / fetchTopicMetadata / fetchTopicOffsets
// and 10,000 messages produced across partitions (consumer groups: groups.test.mjs).
// Run: node --test tests/interop/   (tools/test.sh does this)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startBroker } from './broker.mjs';

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');

test('kafkajs admin and producer', { timeout: 300000 }, async () => {
  const broker = await startBroker();
  const kafka = new Kafka({
    clientId: 'minikafka-interop',
    brokers: [broker.bootstrap],
    logLevel: logLevel.ERROR,
    retry: { retries: 3 },
  });
  const admin = kafka.admin();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  try {
    await admin.connect();
    const topic = 'kafkajs-topic';
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    assert.equal(created, true);
    // Creating it again is not an error for kafkajs (returns false: already exists).
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] }), false);

    assert.ok((await admin.listTopics()).includes(topic));
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(md.topics.length, 1);
    assert.equal(md.topics[0].name, topic);
    const parts = md.topics[0].partitions.map((p) => p.partitionId).sort();
    assert.deepEqual(parts, [0, 1, 2]);
    for (const p of md.topics[0].partitions) {
      assert.equal(p.partitionErrorCode, 0);
      assert.equal(p.leader, 1);
      assert.deepEqual(p.replicas, [1]);
      assert.deepEqual(p.isr, [1]);
    }

    await producer.connect();
    const perPartition = [0, 0, 0];
    const total = 10000;
    const chunk = 1000;
    for (let start = 0; start < total; start += chunk) {
      const messages = [];
      for (let i = start; i < start + chunk; i++) {
        messages.push({
          key: `key-${i}`,
          value: `value-${i}-${'z'.repeat(i % 40)}`,
          partition: i % 3,
          headers: { idx: String(i) },
          timestamp: String(1650000000000 + i),
        });
        perPartition[i % 3]++;
      }
      const res = await producer.send({ topic, acks: -1, messages });
      for (const r of res) {
        assert.equal(r.errorCode, 0);
        assert.equal(r.topicName, topic);
      }
      // baseOffset of this chunk on each partition = messages sent before to that partition.
      for (const r of res) {
        const before = Math.floor(start / 3) + (r.partition < start % 3 ? 1 : 0);
        assert.equal(Number(r.baseOffset), before, `partition ${r.partition} baseOffset`);
      }
    }

    const offsets = await admin.fetchTopicOffsets(topic);
    offsets.sort((a, b) => a.partition - b.partition);
    assert.deepEqual(offsets.map((o) => o.partition), [0, 1, 2]);
    offsets.forEach((o, p) => {
      assert.equal(o.low, '0');
      assert.equal(o.high, String(perPartition[p]));
      assert.equal(o.offset, String(perPartition[p]));
    });
    const sum = offsets.reduce((s, o) => s + Number(o.high), 0);
    assert.equal(sum, total);

    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, 1650000000000 + 3000);
    byTime.sort((a, b) => a.partition - b.partition);
    byTime.forEach((o, p) => assert.equal(o.offset, String(1000), `partition ${p} offset by time`));
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    await broker.stop();
  }
});
