"""Shared fixtures for the interop tests: a real minikafka broker process per test.

The broker binary is target/release/minikafka (override with MINIKAFKA_BIN). Each broker gets a
free port on 127.0.0.1, its own temporary log directory and a server.properties written for it,
so tests never share state and never touch port 9092.
"""

import os
import pathlib
import signal
import socket
import struct
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("MINIKAFKA_BIN", ROOT / "target" / "release" / "minikafka"))


def free_port():
    """A TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_versions_answered(port, timeout=2.0):
    """Whether the broker on `port` answers an ApiVersions v0 request (the request every Kafka
    client sends first). Raises OSError when it cannot be reached."""
    request = struct.pack(">hhih", 18, 0, 0x5EED, len(b"ready")) + b"ready"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(request)) + request)
        head = b""
        while len(head) < 8:  # size, then the correlation id
            chunk = s.recv(8 - len(head))
            if not chunk:
                return False
            head += chunk
        size, correlation = struct.unpack(">ii", head)
        return size >= 4 and correlation == 0x5EED


def wait_until_read(sock, timeout=10.0):
    """Returns once the broker has read every byte sent on `sock`: none is unacknowledged on
    this side and none waits in the broker's socket (from /proc/net/tcp). The broker handles a
    request in the turn that reads it, so what was sent before this returns has been handled
    before anything sent afterwards on another connection: ordering without sleeping."""
    local, peer = sock.getsockname()[1], sock.getpeername()[1]
    deadline = time.monotonic() + timeout
    while True:
        unacked = unread = None
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = open(table).read().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                f = line.split()
                lport, rport = int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16)
                tx, rx = (int(x, 16) for x in f[4].split(":"))
                if (lport, rport) == (local, peer):
                    unacked = tx
                elif (lport, rport) == (peer, local):
                    unread = rx
        if unacked == 0 and unread == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the broker did not read what was sent "
                                 f"({unacked} unacknowledged, {unread} unread bytes)")
        time.sleep(0.001)  # polling for a condition


def wait_until_serving(port, proc, timeout=30.0):
    """Returns once the broker answers ApiVersions: not when its port opens (it is bound before
    the logs are opened and the loop runs), nor when it writes some log line."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with code {proc.returncode} before serving")
        try:
            if api_versions_answered(port):
                return
        except OSError as e:
            last = e
        time.sleep(0.02)  # polling for a condition, not ordering by time
    raise TimeoutError(f"broker on port {port} did not answer ApiVersions within {timeout}s ({last})")


class Broker:
    """One broker process. `props` are extra server.properties lines (key -> value)."""

    def __init__(self, workdir, props=None, port=None):
        self.workdir = pathlib.Path(workdir)
        self.log_dir = self.workdir / "kraft-combined-logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.props = {"num.partitions": "1"}
        self.props.update(props or {})
        self.proc = None
        self.starts = 0
        self.output_path = self.workdir / "broker.out"

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def _write_properties(self):
        # A combined node whose only voter is itself, as in Kafka's own server.properties.
        while getattr(self, "controller_port", self.port) == self.port:
            self.controller_port = free_port()  # never the client port (Kafka refuses that)
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
                         f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "log.dirs": str(self.log_dir),
        }
        lines.update(self.props)
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        return path

    def start(self, timeout=30.0):
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        props_path = self._write_properties()
        env = dict(os.environ)
        env.update(
            {
                "BROKER_PORT": str(self.port),
                "LOG_DIR": str(self.log_dir),
                "LOG_LEVEL": os.environ.get("MINIKAFKA_TEST_LOG_LEVEL", "warn"),
            }
        )
        self.starts += 1
        out = open(self.output_path, "ab")
        out.write(f"\n===== start #{self.starts} =====\n".encode())
        out.flush()
        self.proc = subprocess.Popen(
            [str(BINARY), str(props_path)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
        )
        out.close()
        wait_until_serving(self.port, self.proc, timeout)
        return self

    def stop(self, timeout=20.0):
        """SIGTERM, wait for a clean exit; returns the exit code (SIGKILLs after `timeout`)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"broker ignored SIGTERM for {timeout}s and was killed")

    def kill9(self):
        """Crash the broker: SIGKILL, no chance to flush or checkpoint."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self, timeout=30.0):
        code = self.stop()
        assert code in (0, None), f"broker exited with code {code} on SIGTERM"
        return self.start(timeout)

    def output_tail(self, n=60):
        try:
            lines = self.output_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def segment_files(self, topic, partition):
        return sorted((self.log_dir / f"{topic}-{partition}").glob("*.log"))


@pytest.fixture(scope="session", autouse=True)
def _binary_exists():
    if not BINARY.exists():
        pytest.fail(f"broker binary {BINARY} is missing: run `cargo build --release` first")


@pytest.fixture
def broker_factory(tmp_path, request):
    """Make brokers with custom properties: `broker_factory({"log.segment.bytes": "1048576"})`."""
    made = []

    def make(props=None, start=True):
        b = Broker(tmp_path / f"broker{len(made)}", props)
        made.append(b)
        return b.start() if start else b

    yield make
    for b in made:
        try:
            b.stop()
        finally:
            rep = getattr(request.node, "rep_call", None)
            if rep is not None and rep.failed:
                print(f"--- broker output ({b.output_path}) ---\n{b.output_tail()}")


@pytest.fixture
def broker(broker_factory):
    """A running broker with default settings (1 partition per auto-created topic)."""
    return broker_factory()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def create_topics(bootstrap, specs, timeout=30):
    """Create topics with confluent-kafka's AdminClient: specs = [(name, partitions), ...]."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in specs],
        request_timeout=timeout,
    )
    for name, fut in futures.items():
        fut.result(timeout=timeout)  # raises KafkaException on error
    # Metadata may lag creation by a moment in real Kafka; ours should be immediate.
    md = admin.list_topics(timeout=timeout)
    for name, n in specs:
        assert name in md.topics, f"created topic {name} missing from metadata"
        assert len(md.topics[name].partitions) == n


def read_all(bootstrap, topic, partitions, isolation, timeout=60):
    """Every record of `topic` as {partition: [values]}, read to the end with `isolation`."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{isolation}-{time.time()}",
                  "isolation.level": isolation, "enable.partition.eof": True,
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got = {p: [] for p in range(partitions)}
        eof = set()
        deadline = time.monotonic() + timeout
        while len(eof) < partitions and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise AssertionError(m.error())
                eof.discard(m.partition())
                got[m.partition()].append(m.value().decode())
        assert len(eof) == partitions, f"did not reach the end of {topic} ({eof})"
        return got
    finally:
        c.close()
