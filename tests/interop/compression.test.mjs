// kafkajs with gzip (built in), snappy (kafkajs-snappy) and lz4 (kafkajs-lz4): produces compressed
// by kafkajs are read back byte-identical, and so is an uncompressed produce to a topic with
// compression.type=gzip (stored gzip by the broker). zstd is left out: its kafkajs codec package
// (@kafkajs/zstd) needs a native module that does not build on Node 20.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startBroker } from './broker.mjs';

const require = createRequire(import.meta.url);
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs');
const SnappyCodec = require('kafkajs-snappy');
const LZ4Codec = require('kafkajs-lz4');

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;

const COUNT = 3000;

function message(i) {
  return {
    key: Buffer.from(`key-${i}`),
    value: Buffer.concat([Buffer.from(`value ${i} ${'gz'.repeat(i % 60)}`), Buffer.from([i % 256, 0xff, 0])]),
    headers: { i: String(i) },
  };
}

async function readAll(kafka, topic, groupId) {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const got = [];
    await new Promise((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`only ${got.length} of ${COUNT} read`)), 60000);
      consumer
        .run({
          eachMessage: async ({ message: m }) => {
            got.push(m);
            if (got.length === COUNT) {
              clearTimeout(timer);
              done();
            }
          },
        })
        .catch(fail);
    });
    return got;
  } finally {
    await consumer.disconnect();
  }
}

test('kafkajs gzip, snappy and lz4 round trips, producer-compressed and broker-compressed', { timeout: 180000 }, async () => {
  const broker = await startBroker('kafkajs-gzip');
  const kafka = new Kafka({
    clientId: 'minikafka-compression',
    brokers: [broker.bootstrap],
    logLevel: logLevel.ERROR,
    retry: { retries: 3 },
  });
  const admin = kafka.admin();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [
        { topic: 'kjs-gzip', numPartitions: 1, replicationFactor: 1 },
        { topic: 'kjs-snappy', numPartitions: 1, replicationFactor: 1 },
        { topic: 'kjs-lz4', numPartitions: 1, replicationFactor: 1 },
        {
          topic: 'kjs-broker-gzip',
          numPartitions: 1,
          replicationFactor: 1,
          configEntries: [{ name: 'compression.type', value: 'gzip' }],
        },
      ],
      waitForLeaders: true,
    });
    await producer.connect();
    const plan = [
      ['kjs-gzip', CompressionTypes.GZIP],
      ['kjs-snappy', CompressionTypes.Snappy],
      ['kjs-lz4', CompressionTypes.LZ4],
      ['kjs-broker-gzip', CompressionTypes.None],
    ];
    for (const [topic, compression] of plan) {
      for (let start = 0; start < COUNT; start += 500) {
        const messages = [];
        for (let i = start; i < start + 500; i++) messages.push(message(i));
        const res = await producer.send({ topic, compression, messages, acks: -1 });
        assert.equal(res[0].errorCode, 0);
      }
    }
    for (const [topic] of plan) {
      const got = await readAll(kafka, topic, `g-${topic}`);
      got.forEach((m, i) => {
        const want = message(i);
        assert.equal(m.offset, String(i), topic);
        assert.deepEqual(m.key, want.key, topic);
        assert.deepEqual(m.value, want.value, topic);
        assert.equal(m.headers.i.toString(), String(i), topic);
      });
    }
  } catch (e) {
    e.message += `\n--- broker output ---\n${broker.tail()}`;
    throw e;
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    await broker.stop();
  }
});
