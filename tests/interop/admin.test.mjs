// kafkajs admin against the release broker: create, describeConfigs, alterConfigs,
// createPartitions, deleteTopicRecords, describeCluster, deleteTopics and re-create, with a broker
// restart (SIGTERM) after each change showing that nothing changed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startBroker } from './broker.mjs';

const require = createRequire(import.meta.url);
const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs');

async function configsOf(admin, topic) {
  const { resources } = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    includeSynonyms: false,
  });
  assert.equal(resources.length, 1);
  assert.equal(resources[0].errorCode, 0);
  return Object.fromEntries(resources[0].configEntries.map((e) => [e.configName, e]));
}

test('kafkajs topic admin lifecycle', { timeout: 120000 }, async () => {
  const broker = await startBroker('kafkajs-admin');
  const kafka = new Kafka({
    clientId: 'minikafka-admin',
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 },
  });
  const admin = kafka.admin();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const topic = 'kafkajs-admin-topic';
  const bounce = async () => {
    await producer.disconnect().catch(() => {});
    await admin.disconnect();
    await broker.restart();
    await admin.connect();
  };
  try {
    await admin.connect();
    assert.equal(
      await admin.createTopics({
        topics: [{ topic, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '86400000' }] }],
      }),
      true,
    );
    let cfg = await configsOf(admin, topic);
    assert.equal(cfg['retention.ms'].configValue, '86400000');
    assert.equal(cfg['retention.ms'].isDefault, false);
    assert.equal(cfg['cleanup.policy'].configValue, 'delete');

    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: [{ name: 'cleanup.policy', value: 'compact,delete' }],
        },
      ],
    });
    cfg = await configsOf(admin, topic);
    assert.equal(cfg['cleanup.policy'].configValue, 'compact,delete');
    assert.notEqual(cfg['retention.ms'].configValue, '86400000', 'AlterConfigs replaces the whole set');
    await bounce();
    cfg = await configsOf(admin, topic);
    assert.equal(cfg['cleanup.policy'].configValue, 'compact,delete', 'configs survive a restart');
    await assert.rejects(
      admin.alterConfigs({
        resources: [
          { type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: 'soon' }] },
        ],
      }),
      (e) => e.type === 'INVALID_CONFIG' || /INVALID_CONFIG|Invalid value/.test(String(e)),
    );

    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(md.topics[0].partitions.length, 3);
    await assert.rejects(admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] }));
    await bounce();
    const md2 = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(md2.topics[0].partitions.length, 3, 'partitions survive a restart');

    await producer.connect();
    await producer.send({
      topic,
      messages: Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: 2 })),
    });
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 2, offset: '20' }] });
    const offsets = await admin.fetchTopicOffsets(topic);
    const p2 = offsets.find((o) => o.partition === 2);
    assert.equal(p2.low, '20');
    assert.equal(p2.high, '50');
    await bounce();
    const p2again = (await admin.fetchTopicOffsets(topic)).find((o) => o.partition === 2);
    assert.deepEqual([p2again.low, p2again.high], ['20', '50'], 'log start survives a restart');

    const cluster = await admin.describeCluster();
    assert.equal(cluster.brokers.length, 1);
    assert.equal(cluster.brokers[0].nodeId, 1);
    assert.equal(cluster.controller, 1);
    assert.ok(cluster.clusterId);

    await admin.deleteTopics({ topics: [topic] });
    assert.ok(!(await admin.listTopics()).includes(topic));
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] }), true);
    const fresh = await admin.fetchTopicOffsets(topic);
    assert.deepEqual(
      fresh.map((o) => [o.partition, o.low, o.high]).sort(),
      [[0, '0', '0'], [1, '0', '0'], [2, '0', '0']],
    );
    cfg = await configsOf(admin, topic);
    assert.equal(cfg['cleanup.policy'].configValue, 'delete');
    await bounce();
    const again = await admin.fetchTopicOffsets(topic);
    assert.deepEqual(
      again.map((o) => [o.partition, o.low, o.high]).sort(),
      [[0, '0', '0'], [1, '0', '0'], [2, '0', '0']],
      'the re-created topic is still empty after a restart',
    );
  } catch (e) {
    console.error(broker.tail());
    throw e;
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    await broker.stop();
  }
});
