// kafkajs transactions against the release broker: producer.transaction() committed and
// aborted, sendOffsets inside a transaction, and a read_committed consumer (kafkajs'
// readUncommitted: false) that sees exactly the committed records, in order.
// Run: node --test tests/interop/   (tools/test.sh does this)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startBroker } from './broker.mjs';

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');

async function readAll(kafka, topic, groupId, readUncommitted, expected) {
  const consumer = kafka.consumer({ groupId, readUncommitted, maxWaitTimeInMs: 100 });
  const got = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let resolveDone;
  const done = new Promise((r) => { resolveDone = r; });
  await consumer.run({
    eachMessage: async ({ message }) => {
      got.push(message.value.toString());
      if (got.length >= expected) resolveDone();
    },
  });
  await Promise.race([done, new Promise((r) => setTimeout(r, 20000))]);
  // A little longer, to see that nothing more arrives.
  await new Promise((r) => setTimeout(r, 500));
  await consumer.disconnect();
  return got;
}

test('kafkajs transactions: commit, abort, sendOffsets, read_committed', { timeout: 300000 }, async () => {
  const broker = await startBroker('kafkajs-txn');
  const kafka = new Kafka({
    clientId: 'minikafka-txn',
    brokers: [broker.bootstrap],
    logLevel: logLevel.ERROR,
    retry: { retries: 5 },
  });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'kjs-in', numPartitions: 1 }, { topic: 'kjs-out', numPartitions: 1 }] });
  const producer = kafka.producer({ transactionalId: 'kafkajs-app', maxInFlightRequests: 1, idempotent: true });
  try {
    await producer.connect();
    const committed = [];
    for (let r = 0; r < 10; r++) {
      const txn = await producer.transaction();
      const messages = [];
      for (let i = 0; i < 20; i++) messages.push({ value: `r${r}-${i}` });
      await txn.send({ topic: 'kjs-out', messages });
      if (r % 2 === 0) {
        await txn.commit();
        committed.push(...messages.map((m) => m.value));
      } else {
        await txn.abort();
      }
    }
    const seen = await readAll(kafka, 'kjs-out', 'kjs-committed', false, committed.length);
    assert.deepEqual(seen, committed);
    const all = await readAll(kafka, 'kjs-out', 'kjs-uncommitted', true, 200);
    assert.equal(all.length, 200);

    // Offsets committed inside a transaction: visible to the group only after the commit.
    const plain = kafka.producer();
    await plain.connect();
    await plain.send({ topic: 'kjs-in', messages: Array.from({ length: 10 }, (_, i) => ({ value: `in-${i}` })) });
    await plain.disconnect();
    const txn = await producer.transaction();
    await txn.send({ topic: 'kjs-out', messages: [{ value: 'derived' }] });
    await txn.sendOffsets({
      consumerGroupId: 'kjs-group',
      topics: [{ topic: 'kjs-in', partitions: [{ partition: 0, offset: '10' }] }],
    });
    let offsets = await admin.fetchOffsets({ groupId: 'kjs-group', topics: ['kjs-in'] });
    assert.equal(offsets[0].partitions[0].offset, '-1', 'not visible inside the transaction');
    await txn.commit();
    offsets = await admin.fetchOffsets({ groupId: 'kjs-group', topics: ['kjs-in'] });
    assert.equal(offsets[0].partitions[0].offset, '10');
  } finally {
    await producer.disconnect();
    await admin.disconnect();
    await broker.stop();
  }
});
