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

function waitForPort(port, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((ok, fail) => {
    const attempt = () => {
      if (child.exitCode !== null) return fail(new Error(`broker exited with ${child.exitCode}`));
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => { sock.destroy(); ok(); });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) fail(new Error(`broker not listening on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

// A broker whose output goes to a file; tail() gives its last lines for failure messages.
export async function startBroker(tag = 'kafkajs', extraProps = []) {
  assert.ok(existsSync(BINARY), `broker binary ${BINARY} missing: cargo build --release first`);
  const dir = mkdtempSync(join(tmpdir(), `minikafka-${tag}-`));
  const port = await freePort();
  const logDir = join(dir, 'kraft-combined-logs');
  const props = join(dir, 'server.properties');
  const outPath = join(dir, 'broker.out');
  writeFileSync(props, [
    'process.roles=broker,controller',
    'node.id=1',
    `listeners=PLAINTEXT://127.0.0.1:${port}`,
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
    await waitForPort(port, child, 30000);
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

