// Consumer groups with kafkajs: three members share a 6-partition topic two partitions each,
// 60,000 messages are consumed exactly once with commits, a member that disconnects hands its
// partitions over in one rebalance, a member whose process is SIGKILLed (no LeaveGroup) is
// expelled after its session timeout and nothing is lost; the admin client lists, describes and
// deletes groups and fetches, sets and resets their offsets.
// Run: node --test tests/interop/   (tools/test.sh does this)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { startBroker as startBrokerWith } from './broker.mjs';

const require = createRequire(import.meta.url);
const { Kafka, logLevel, AssignerProtocol } = require('kafkajs');

const here = dirname(fileURLToPath(import.meta.url));
const SESSION_MS = 6000;
const HEARTBEAT_MS = 500;

const startBroker = () => startBrokerWith('kafkajs-groups', ['group.initial.rebalance.delay.ms=0']);

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function waitFor(pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    }
    await sleep(50);
  }
}

// Runs `body` with a broker; on failure the broker's output tail is added to the error.
async function withBroker(body) {
  const broker = await startBroker();
  try {
    await body(broker);
  } catch (e) {
    e.message += `\n--- broker ${broker.alive() ? 'alive' : 'DEAD'}, output tail ---\n${broker.tail()}`;
    throw e;
  } finally {
    await broker.stop();
  }
}

function kafkaFor(broker, clientId) {
  return new Kafka({ clientId, brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 5 } });
}

async function produceNumbered(kafka, topic, partitions, start, count) {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const chunk = 2000;
    for (let s = start; s < start + count; s += chunk) {
      const messages = [];
      for (let i = s; i < Math.min(s + chunk, start + count); i++) {
        messages.push({ key: String(i), value: String(i), partition: i % partitions });
      }
      const res = await producer.send({ topic, acks: -1, messages });
      for (const r of res) assert.equal(r.errorCode, 0);
    }
  } finally {
    await producer.disconnect();
  }
}

// A member's view: every GROUP_JOIN's assignment and every consumed (partition, offset, value).
function tracker(name) {
  return { name, joins: [], consumed: [], crashes: [] };
}

const latest = (t) => (t.joins.length ? t.joins[t.joins.length - 1] : []);

// An in-process kafkajs consumer; eachBatch records the batch, kafkajs commits after it.
async function startMember(kafka, groupId, topic, t) {
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: SESSION_MS,
    heartbeatInterval: HEARTBEAT_MS,
    rebalanceTimeout: 20000,
    maxWaitTimeInMs: 200,
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    t.joins.push((e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b));
  });
  consumer.on(consumer.events.CRASH, (e) => t.crashes.push(String(e.payload.error)));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        t.consumed.push([batch.partition, Number(m.offset), Number(m.value.toString())]);
      }
    },
  });
  return consumer;
}

// The same consumer in a child node process that reports on stdout, so it can be SIGKILLed.
const CHILD = `
import { createRequire } from 'node:module';
const require = createRequire(process.env.KJS_BASE);
const { Kafka, logLevel } = require('kafkajs');
const { KJS_BROKER, KJS_GROUP, KJS_TOPIC, KJS_SESSION, KJS_HEARTBEAT } = process.env;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const kafka = new Kafka({ clientId: 'child', brokers: [KJS_BROKER], logLevel: logLevel.NOTHING });
const consumer = kafka.consumer({ groupId: KJS_GROUP, sessionTimeout: Number(KJS_SESSION),
  heartbeatInterval: Number(KJS_HEARTBEAT), rebalanceTimeout: 20000, maxWaitTimeInMs: 200 });
consumer.on(consumer.events.GROUP_JOIN, (e) => out({ join: e.payload.memberAssignment[KJS_TOPIC] || [] }));
consumer.on(consumer.events.CRASH, (e) => out({ crash: String(e.payload.error) }));
await consumer.connect();
await consumer.subscribe({ topic: KJS_TOPIC, fromBeginning: true });
await consumer.run({
  eachBatch: async ({ batch }) => {
    out({ p: batch.partition, m: batch.messages.map((m) => [Number(m.offset), Number(m.value.toString())]) });
  },
});
out({ running: true });
`;

function startChild(broker, groupId, topic, t) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
    env: {
      ...process.env,
      KJS_BASE: join(here, 'package.json'),
      KJS_BROKER: broker.bootstrap,
      KJS_GROUP: groupId,
      KJS_TOPIC: topic,
      KJS_SESSION: String(SESSION_MS),
      KJS_HEARTBEAT: String(HEARTBEAT_MS),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buf = '';
  t.stderr = '';
  child.stdout.on('data', (d) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const o = JSON.parse(line);
      if (o.join) t.joins.push(o.join.slice().sort((a, b) => a - b));
      if (o.crash) t.crashes.push(o.crash);
      if (o.m) for (const [off, v] of o.m) t.consumed.push([o.p, off, v]);
    }
  });
  child.stderr.on('data', (d) => { t.stderr += d.toString(); });
  return child;
}

function splitOk(ts, sizes) {
  const sets = ts.map(latest);
  const all = sets.flat();
  return JSON.stringify(sets.map((s) => s.length).sort()) === JSON.stringify(sizes.slice().sort())
    && new Set(all).size === 6 && all.length === 6;
}

const describeSplit = (ts) => ts.map((t) => `${t.name}: joins ${JSON.stringify(t.joins)} crashes ${JSON.stringify(t.crashes)}`).join('; ');

function assertExactlyOnce(ts, total, what) {
  const seen = new Map();
  for (const t of ts) for (const [, , v] of t.consumed) seen.set(v, (seen.get(v) || 0) + 1);
  const dups = [...seen].filter(([, n]) => n > 1).map(([v]) => v);
  const missing = [];
  for (let i = 0; i < total; i++) if (!seen.has(i)) missing.push(i);
  assert.deepEqual(dups.slice(0, 10), [], `${what}: ${dups.length} read twice`);
  assert.deepEqual(missing.slice(0, 10), [], `${what}: ${missing.length} never read`);
  assert.equal(seen.size, total, `${what}: unexpected values`);
  for (const t of ts) {
    for (const [p, , v] of t.consumed) assert.equal(v % 6, p, `${t.name}: value ${v} on partition ${p}`);
  }
}

const distinct = (ts) => new Set(ts.flatMap((t) => t.consumed.map((c) => c[2]))).size;

async function committed(admin, groupId, topic) {
  const [res] = await admin.fetchOffsets({ groupId, topics: [topic] });
  const out = {};
  for (const p of res.partitions) out[p.partition] = p.offset;
  return out;
}

async function waitCommitted(admin, groupId, topic, each, timeoutMs) {
  let last = {};
  const want = JSON.stringify(Object.fromEntries([0, 1, 2, 3, 4, 5].map((p) => [p, String(each)])));
  await waitFor(async () => {
    last = await committed(admin, groupId, topic);
    return JSON.stringify(last) === want;
  }, timeoutMs, () => `committed offsets ${each} per partition, have ${JSON.stringify(last)}`);
}

test('kafkajs group: 3 members, 60,000 messages once, disconnect and SIGKILL rebalances', { timeout: 180000 }, async () => {
  await withBroker(async (broker) => {
    const kafka = kafkaFor(broker, 'groups-main');
    const admin = kafka.admin();
    const topic = 'kjs-group-topic';
    const groupId = 'kjs-group';
    const a = tracker('a');
    const b = tracker('b');
    const c = tracker('c(child)');
    let ca = null;
    let cb = null;
    let child = null;
    try {
      await admin.connect();
      assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 6 }], waitForLeaders: true }), true);
      ca = await startMember(kafkaFor(broker, 'member-a'), groupId, topic, a);
      cb = await startMember(kafkaFor(broker, 'member-b'), groupId, topic, b);
      child = startChild(broker, groupId, topic, c);
      const ts = [a, b, c];
      await waitFor(() => splitOk(ts, [2, 2, 2]), 40000, () => `two partitions each: ${describeSplit(ts)} ${c.stderr}`);
      await sleep(1500);
      assert.ok(splitOk(ts, [2, 2, 2]), `still two each after 1.5 s: ${describeSplit(ts)}`);

      await produceNumbered(kafka, topic, 6, 0, 60000);
      await waitFor(() => distinct(ts) >= 60000, 90000, () => `60000 consumed, have ${distinct(ts)}`);
      await waitCommitted(admin, groupId, topic, 10000, 15000);
      await sleep(300);
      assertExactlyOnce(ts, 60000, 'phase 1');
      for (const t of ts) {
        const mine = new Set(latest(t));
        for (const [p] of t.consumed) assert.ok(mine.has(p), `${t.name} read partition ${p}, owns ${[...mine]}`);
      }

      // a leaves (LeaveGroup): b and c own 3 each after exactly one more join, well before the session timeout.
      const joinsBefore = [b.joins.length, c.joins.length];
      const t0 = Date.now();
      await ca.disconnect();
      ca = null;
      await waitFor(() => splitOk([b, c], [3, 3]), 5000, () => `three each after disconnect: ${describeSplit([b, c])}`);
      const took = Date.now() - t0;
      await sleep(1000);
      assert.ok(splitOk([b, c], [3, 3]));
      assert.deepEqual([b.joins.length - joinsBefore[0], c.joins.length - joinsBefore[1]], [1, 1],
        `one rebalance: ${describeSplit([b, c])} (took ${took} ms)`);

      await produceNumbered(kafka, topic, 6, 60000, 6000);
      await waitFor(() => distinct(ts) >= 66000, 60000, () => `66000 consumed, have ${distinct(ts)}`);
      await waitCommitted(admin, groupId, topic, 11000, 15000);
      assertExactlyOnce(ts, 66000, 'phase 2');

      // c's process dies without a LeaveGroup: b gets all six once c's session has expired.
      const killedAt = Date.now();
      child.kill('SIGKILL');
      await produceNumbered(kafka, topic, 6, 66000, 6000);
      await waitFor(() => latest(b).length === 6, SESSION_MS + 8000, () => `b to own all six: ${describeSplit([b])}`);
      const after = Date.now() - killedAt;
      assert.ok(after <= SESSION_MS + 5000, `rebalance ${after} ms after SIGKILL (session ${SESSION_MS} ms)`);
      assert.ok(after >= SESSION_MS - HEARTBEAT_MS - 1000, `c expelled after ${after} ms, before its session (${SESSION_MS} ms) expired`);
      await waitFor(() => distinct(ts) >= 72000, 60000, () => `72000 consumed, have ${distinct(ts)}`);
      await waitCommitted(admin, groupId, topic, 12000, 15000);
      assertExactlyOnce(ts, 72000, 'phase 3');
      assert.deepEqual([...a.crashes, ...b.crashes, ...c.crashes], []);
    } finally {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (ca) await ca.disconnect().catch(() => {});
      if (cb) await cb.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
    }
  });
});

test('kafkajs admin: listGroups, describeGroups, fetchOffsets, setOffsets, resetOffsets, deleteGroups', { timeout: 120000 }, async () => {
  await withBroker(async (broker) => {
    const kafka = kafkaFor(broker, 'groups-admin');
    const admin = kafka.admin();
    const topic = 'kjs-admin-topic';
    const groupId = 'kjs-admin-group';
    let consumer = null;
    try {
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: 6 }], waitForLeaders: true });
      await produceNumbered(kafka, topic, 6, 0, 600);
      const t = tracker('m');
      consumer = await startMember(kafkaFor(broker, 'admin-member'), groupId, topic, t);
      await waitFor(() => t.consumed.length >= 600, 30000, () => `600 consumed, have ${t.consumed.length}`);
      await waitCommitted(admin, groupId, topic, 100, 15000);

      const { groups } = await admin.listGroups();
      assert.deepEqual(groups.filter((g) => g.groupId === groupId), [{ groupId, protocolType: 'consumer' }]);

      let desc = (await admin.describeGroups([groupId])).groups;
      assert.equal(desc.length, 1);
      let g = desc[0];
      assert.equal(g.errorCode, 0);
      assert.equal(g.groupId, groupId);
      assert.equal(g.state, 'Stable');
      assert.equal(g.protocolType, 'consumer');
      assert.equal(g.protocol, 'RoundRobinAssigner');
      assert.equal(g.members.length, 1);
      const m = g.members[0];
      assert.equal(m.clientId, 'admin-member');
      assert.ok(m.memberId.startsWith('admin-member-'), m.memberId);
      assert.equal(m.clientHost.replace(/^\//, ''), '127.0.0.1');
      const asg = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      assert.deepEqual(asg.assignment[topic].slice().sort(), [0, 1, 2, 3, 4, 5]);
      const meta = AssignerProtocol.MemberMetadata.decode(m.memberMetadata);
      assert.deepEqual(meta.topics, [topic]);

      // A group with a member cannot be deleted: NON_EMPTY_GROUP (68).
      await assert.rejects(admin.deleteGroups([groupId]), (e) => {
        assert.equal(e.name, 'KafkaJSDeleteGroupsError', String(e));
        assert.equal(e.groups[0].errorCode, 68, JSON.stringify(e.groups));
        return true;
      });

      await consumer.disconnect();
      consumer = null;
      await waitFor(async () => (await admin.describeGroups([groupId])).groups[0].state === 'Empty', 10000, 'Empty');
      g = (await admin.describeGroups([groupId])).groups[0];
      assert.deepEqual(g.members, []);

      await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '42' }, { partition: 3, offset: '7' }] });
      let offs = await committed(admin, groupId, topic);
      assert.deepEqual(offs, { 0: '42', 1: '100', 2: '100', 3: '7', 4: '100', 5: '100' });

      await admin.resetOffsets({ groupId, topic, earliest: true });
      offs = await committed(admin, groupId, topic);
      assert.deepEqual(offs, Object.fromEntries([0, 1, 2, 3, 4, 5].map((p) => [p, '-2'])));
      const [resolved] = await admin.fetchOffsets({ groupId, topics: [topic], resolveOffsets: true });
      assert.deepEqual(resolved.partitions.map((p) => p.offset), ['0', '0', '0', '0', '0', '0']);
      offs = await committed(admin, groupId, topic);
      assert.deepEqual(offs, Object.fromEntries([0, 1, 2, 3, 4, 5].map((p) => [p, '0'])));

      // A new member re-reads everything from the reset offsets.
      const t2 = tracker('m2');
      consumer = await startMember(kafkaFor(broker, 'admin-member2'), groupId, topic, t2);
      await waitFor(() => t2.consumed.length >= 600, 30000, () => `600 re-read, have ${t2.consumed.length}`);
      assertExactlyOnce([t2], 600, 're-read after reset');
      await waitCommitted(admin, groupId, topic, 100, 15000);
      await consumer.disconnect();
      consumer = null;

      assert.deepEqual(await admin.deleteGroups([groupId]), [{ groupId, errorCode: 0 }]);
      assert.deepEqual((await admin.listGroups()).groups.filter((x) => x.groupId === groupId), []);
      offs = await committed(admin, groupId, topic);
      assert.deepEqual(offs, Object.fromEntries([0, 1, 2, 3, 4, 5].map((p) => [p, '-1'])));
      // Describing a deleted group: state Dead (DescribeGroups < v6) or GROUP_ID_NOT_FOUND.
      try {
        g = (await admin.describeGroups([groupId])).groups[0];
        assert.equal(g.state, 'Dead');
        assert.deepEqual(g.members, []);
      } catch (e) {
        assert.equal(e.type, 'GROUP_ID_NOT_FOUND', String(e));
      }
      await assert.rejects(admin.deleteGroups([groupId]), (e) => {
        assert.equal(e.groups[0].errorCode, 69, JSON.stringify(e.groups));
        return true;
      });
    } finally {
      if (consumer) await consumer.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
    }
  });
});
