// kafkajs against three combined nodes (tools/cluster.py run): a topic of 12 partitions created
// through one node is spread over the three brokers; kafkajs produces to every partition and a
// consumer group of two kafkajs consumers reads every message once.
// Run: node --test tests/interop/   (tools/test.sh does this)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BINARY } from './broker.mjs';

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');
const here = dirname(fileURLToPath(import.meta.url));
const CLUSTER = resolve(here, '..', '..', 'tools', 'cluster.py');

// Starts the cluster and resolves with { bootstrap: [...], stop() } once every node serves.
function startCluster() {
  return new Promise((ok, fail) => {
    const proc = spawn('python3', [CLUSTER, 'run', '--binary', BINARY], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(new Error(`cluster did not start: ${out} ${err}`)), 60000);
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/bootstrap\.servers=(\S+)/);
      if (m) {
        clearTimeout(timer);
        ok({
          bootstrap: m[1].split(','),
          stop: () => new Promise((done) => {
            proc.on('exit', done);
            proc.kill('SIGTERM');
          }),
        });
      }
    });
    proc.on('exit', (code) => fail(new Error(`cluster exited (${code}): ${out} ${err}`)));
  });
}

test('kafkajs against three combined nodes', { timeout: 300000 }, async () => {
  const cluster = await startCluster();
  const kafka = new Kafka({
    clientId: 'minikafka-cluster',
    brokers: [cluster.bootstrap[1]],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8 },
  });
  const admin = kafka.admin();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const consumers = [];
  try {
    await admin.connect();
    const topic = 'kafkajs-spread';
    assert.equal(await admin.createTopics({
      topics: [{ topic, numPartitions: 12, replicationFactor: 1 }],
      waitForLeaders: true,
    }), true);
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    const leaders = new Set(md.topics[0].partitions.map((p) => p.leader));
    assert.deepEqual([...leaders].sort(), [1, 2, 3]);
    const cl = await admin.describeCluster();
    assert.deepEqual(cl.brokers.map((b) => b.nodeId).sort(), [1, 2, 3]);

    await producer.connect();
    const total = 1200;
    const messages = [];
    for (let i = 0; i < total; i++) {
      messages.push({ value: `v-${i}`, partition: i % 12 });
    }
    await producer.send({ topic, messages, acks: -1 });

    const seen = new Map();
    for (let k = 0; k < 2; k++) {
      const consumer = kafka.consumer({ groupId: 'kafkajs-cluster-group', sessionTimeout: 10000 });
      consumers.push(consumer);
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          const v = message.value.toString();
          assert.ok(!seen.has(v), `${v} read twice`);
          seen.set(v, partition);
        },
      });
    }
    const deadline = Date.now() + 120000;
    while (seen.size < total && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(seen.size, total);
    for (const [v, p] of seen) {
      assert.equal(Number(v.slice(2)) % 12, p);
    }
  } finally {
    for (const c of consumers) await c.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    await cluster.stop();
  }
});
