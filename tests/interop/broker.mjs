// Starting a release broker for the kafkajs tests: a temp dir, a free port, server.properties
// with the given extra lines, output in a file whose tail explains a failure.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const BINARY = process.env.MINIKAFKA_BIN || resolve(here, '..', '..', 'target', 'release', 'minikafka');

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

// Whether the broker answers one ApiVersions v0 request (what every Kafka client sends first).
function apiVersionsAnswered(port) {
  return new Promise((ok) => {
    const clientId = Buffer.from('ready');
    const req = Buffer.alloc(4 + 10 + clientId.length);
    req.writeInt32BE(10 + clientId.length, 0);
    req.writeInt16BE(18, 4); // ApiVersions
    req.writeInt16BE(0, 6); // v0
    req.writeInt32BE(0x5eed, 8); // correlation id
    req.writeInt16BE(clientId.length, 12);
    clientId.copy(req, 14);
    const sock = connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    const done = (answered) => { sock.destroy(); ok(answered); };
    sock.setTimeout(2000, () => done(false));
    sock.once('connect', () => sock.write(req));
    sock.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 8) done(got.readInt32BE(4) === 0x5eed);
    });
    sock.once('error', () => done(false));
    sock.once('end', () => done(false));
  });
}

// Resolves once the broker answers ApiVersions: not when its port opens (it is bound before
// its logs are opened and its loop runs).
async function waitUntilServing(port, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`broker exited with ${child.exitCode}`);
    if (await apiVersionsAnswered(port)) return;
    if (Date.now() > deadline) throw new Error(`broker on ${port} did not answer ApiVersions`);
    await new Promise((r) => setTimeout(r, 20)); // polling for a condition, not ordering by time
  }
}

// A broker whose output goes to a file; tail() gives its last lines for failure messages.
export async function startBroker(tag = 'kafkajs', extraProps = []) {
  assert.ok(existsSync(BINARY), `broker binary ${BINARY} missing: cargo build --release first`);
  const dir = mkdtempSync(join(tmpdir(), `minikafka-${tag}-`));
  const port = await freePort();
  let controllerPort = await freePort();
  while (controllerPort === port) controllerPort = await freePort(); // Kafka refuses a shared port
  const logDir = join(dir, 'kraft-combined-logs');
  const props = join(dir, 'server.properties');
  const outPath = join(dir, 'broker.out');
  writeFileSync(props, [
    // A combined node whose only voter is itself, as in Kafka's own server.properties.
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    'controller.listener.names=CONTROLLER',
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `log.dirs=${logDir}`,
    'num.partitions=1',
    ...extraProps,
    '',
  ].join('\n'));
  let child;
  const spawnBroker = async () => {
    const out = openSync(outPath, 'a');
    child = spawn(BINARY, [props], {
      env: { ...process.env, BROKER_PORT: String(port), LOG_DIR: logDir, LOG_LEVEL: 'warn' },
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    await waitUntilServing(port, child, 30000);
  };
  const terminate = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
      await exited;
      clearTimeout(timer);
    }
  };
  await spawnBroker();
  return {
    bootstrap: `127.0.0.1:${port}`,
    alive: () => child.exitCode === null && child.signalCode === null,
    tail(n = 40) {
      try {
        return readFileSync(outPath, 'utf8').split('\n').slice(-n).join('\n');
      } catch {
        return '';
      }
    },
    // SIGTERM, then the same broker again on the same port and data.
    async restart() {
      await terminate();
      assert.equal(child.exitCode, 0, 'clean exit on SIGTERM');
      await spawnBroker();
    },
    async stop() {
      await terminate();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

