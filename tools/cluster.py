#!/usr/bin/env python3
"""A cluster of combined nodes on loopback (process.roles=broker,controller), each a separate
process started from a generated server.properties, and the cluster benchmarks.

    tools/cluster.py run       [--nodes 3]                 start a cluster, print its bootstrap, wait
    tools/cluster.py failover  [--nodes 3] [--rounds 10]   kill -9 the active controller while an
                                                           admin client creates and deletes topics
    tools/cluster.py create    [--nodes 3] [--topics 100]  CreateTopics acknowledged -> every broker
                                                           serves the partition
    tools/cluster.py footprint [--nodes 3]                 idle RSS per node

--brokers B makes the --nodes nodes controller-only and adds B broker-only nodes.

Common options: --binary (default target/release/minikafka), --keep (leave the data behind).
The interop tests import `Cluster` from here. Each benchmark prints a table.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("MINIKAFKA_BIN", os.path.join(ROOT, "target", "release", "minikafka"))


def free_ports(n):
    """n distinct TCP ports that were free a moment ago."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _call(port, api_key, version, body, timeout=2.0):
    """One request (non-flexible header v1) and its response body, or None."""
    header = struct.pack(">hhih", api_key, version, 7, 7) + b"cluster"
    req = header + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack(">i", len(req)) + req)
            head = s.recv(4, socket.MSG_WAITALL)
            if len(head) < 4:
                return None
            size = struct.unpack(">i", head)[0]
            buf = b""
            while len(buf) < size:
                chunk = s.recv(size - len(buf))
                if not chunk:
                    return None
                buf += chunk
            return buf[4:]  # after the correlation id
    except OSError:
        return None


class _R:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)
        self.p += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.b[self.p:self.p + n].decode()
        self.p += n
        return s


def metadata(port, topics=None, timeout=2.0):
    """Metadata v1 from the node on `port`: {"brokers": {id: port}, "controller": id,
    "topics": {name: {partition: leader}}, "isr": {name: {partition: [ids]}}}, or None when it
    does not answer."""
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics)) + b"".join(
            struct.pack(">h", len(t)) + t.encode() for t in topics)
    buf = _call(port, 3, 1, body, timeout)
    if buf is None:
        return None
    r = _R(buf)
    brokers = {}
    for _ in range(r.take(">i")):
        node = r.take(">i")
        r.string()
        brokers[node] = r.take(">i")
        r.string()
    controller = r.take(">i")
    out = {}
    isrs = {}
    for _ in range(r.take(">i")):
        err = r.take(">h")
        name = r.string()
        r.take(">b")
        parts = {}
        isr = {}
        for _ in range(r.take(">i")):
            perr, index, leader = r.take(">hii")
            replicas = r.take(">i")  # (skipped; `r.p += 4 * r.take()` would lose the take)
            r.p += 4 * replicas
            isr[index] = [r.take(">i") for _ in range(r.take(">i"))]
            if perr == 0:
                parts[index] = leader
        if err == 0:
            out[name] = parts
            isrs[name] = isr
    return {"brokers": brokers, "controller": controller, "topics": out, "isr": isrs}


def list_offsets_ok(port, topic, partition, timeout=2.0):
    """Whether the node on `port` answers ListOffsets v1 (latest) for the partition without
    error: it serves the partition as its leader."""
    t = topic.encode()
    body = (struct.pack(">ii", -1, 1) + struct.pack(">h", len(t)) + t
            + struct.pack(">iiq", 1, partition, -1))
    buf = _call(port, 2, 1, body, timeout)
    if buf is None:
        return False
    r = _R(buf)
    if r.take(">i") != 1:
        return False
    r.string()
    if r.take(">i") != 1:
        return False
    _, err = r.take(">ih")
    return err == 0


class Cluster:
    """N combined nodes (ids 1..N), each its own process with its own log dir; or, with
    `brokers`, N controller-only nodes (ids 1..N) and that many broker-only nodes after them."""

    def __init__(self, nodes=3, binary=BINARY, workdir=None, props=None, log_level="info",
                 brokers=0):
        self.n = nodes + brokers
        self.binary = binary
        self.workdir = workdir or tempfile.mkdtemp(prefix="minikafka-cluster-")
        self.own_workdir = workdir is None
        ids = range(1, self.n + 1)
        self.roles = {i: ("broker,controller" if not brokers else
                          "controller" if i <= nodes else "broker") for i in ids}
        ports = free_ports(2 * self.n)
        self.ports = {i: ports[i - 1] for i in ids if "broker" in self.roles[i]}
        self.controller_ports = {i: ports[self.n + i - 1] for i in ids
                                 if "controller" in self.roles[i]}
        self.props = props or {}
        self.log_level = log_level
        self.procs = {}

    def brokers(self):
        """The running nodes with the broker role."""
        return [i for i in self.alive() if i in self.ports]

    @property
    def bootstrap(self):
        return ",".join(f"127.0.0.1:{self.ports[i]}" for i in sorted(self.ports))

    def bootstrap_of_brokers(self, exclude=()):
        return ",".join(f"127.0.0.1:{self.ports[i]}" for i in self.brokers() if i not in exclude)

    def bootstrap_of(self, ids):
        return ",".join(f"127.0.0.1:{self.ports[i]}" for i in ids)

    def properties(self, i):
        voters = ",".join(f"{j}@127.0.0.1:{p}" for j, p in sorted(self.controller_ports.items()))
        listeners = []
        if i in self.ports:
            listeners.append(f"PLAINTEXT://127.0.0.1:{self.ports[i]}")
        if i in self.controller_ports:
            listeners.append(f"CONTROLLER://127.0.0.1:{self.controller_ports[i]}")
        lines = {
            "process.roles": self.roles[i],
            "node.id": str(i),
            "controller.quorum.voters": voters,
            "listeners": ",".join(listeners),
            "controller.listener.names": "CONTROLLER",
            "log.dirs": os.path.join(self.workdir, f"node{i}"),
        }
        lines.update(self.props)
        path = os.path.join(self.workdir, f"node{i}.properties")
        with open(path, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in lines.items()))
        return path

    def log_path(self, i):
        return os.path.join(self.workdir, f"node{i}.log")

    def start(self, i):
        path = self.properties(i)
        out = open(self.log_path(i), "ab")
        # A node never inherits `run`'s blocked SIGTERM: it must stop when told to.
        self.procs[i] = subprocess.Popen(
            [self.binary, path], stdout=out, stderr=out,
            env={**os.environ, "LOG_LEVEL": self.log_level},
            preexec_fn=lambda: signal.pthread_sigmask(
                signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM]))

    def start_all(self):
        for i in range(1, self.n + 1):
            self.start(i)
        return self

    def alive(self):
        return sorted(i for i, p in self.procs.items() if p.poll() is None)

    def kill(self, i):
        """SIGKILL: no shutdown work at all."""
        p = self.procs.pop(i)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop(self, i, timeout=30):
        p = self.procs.pop(i)
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()  # never left behind
            p.wait()
            raise

    def stop_all(self, timeout=30):
        # All at once: one by one, the last nodes would wait out their controlled shutdown
        # (broker.session.timeout.ms) once the quorum has stopped under them.
        procs = [self.procs.pop(i) for i in list(self.procs)]
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()  # never left behind
                p.wait()
                raise

    def wipe(self, i):
        shutil.rmtree(os.path.join(self.workdir, f"node{i}"), ignore_errors=True)

    def close(self, keep=False):
        for i in list(self.procs):
            self.kill(i)
        if self.own_workdir and not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def metadata(self, i, topics=None):
        return metadata(self.ports[i], topics)

    def wait_ready(self, brokers=None, timeout=30.0):
        """Until every running node lists `brokers` (default: every running node) as live
        brokers, names a controller clients can use (in a cluster, itself: it forwards) and
        all agree on the active controller. Returns the active controller's id."""
        want = sorted(brokers or self.brokers())
        deadline = time.monotonic() + timeout
        views = None
        while time.monotonic() < deadline:
            views = {i: self.metadata(i) for i in self.brokers()}
            leaders = {self.quorum_leader(i) for i in self.alive()}
            if all(v and sorted(v["brokers"]) == want and v["controller"] in want
                   for v in views.values()) \
                    and len(leaders) == 1 and next(iter(leaders)) in self.alive():
                return next(iter(leaders))
            time.sleep(0.02)  # polling for a condition
        raise AssertionError(f"cluster not ready within {timeout}s: {views} (logs in {self.workdir})")

    def active_controller(self, timeout=30.0):
        """The node the quorum elected, as DescribeQuorum on a running node says (not what
        Metadata names, which may be a forwarding node)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in self.alive():
                leader = self.quorum_leader(i)
                if leader is not None and leader in self.alive():
                    return leader
            time.sleep(0.02)  # polling for a condition
        raise AssertionError(f"no active controller within {timeout}s (logs in {self.workdir})")

    def quorum_leader(self, i):
        """The active controller as node `i` reports it (DescribeQuorum on its controller
        listener, or on its client listener, which a broker-only node forwards)."""
        return describe_quorum(self.controller_ports.get(i) or self.ports[i])

    def wait_topic(self, name, partitions, timeout=30.0):
        """Until every running node lists the topic with a leader for every partition and each
        leader answers for it. Returns {partition: leader}."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            views = [self.metadata(i, [name]) for i in self.brokers()]
            leaders = [v["topics"].get(name) if v else None for v in views]
            if all(l is not None and len(l) == partitions for l in leaders) \
                    and all(l == leaders[0] for l in leaders):
                if all(list_offsets_ok(self.ports[leader], name, p)
                       for p, leader in leaders[0].items() if leader in self.brokers()):
                    return leaders[0]
            last = leaders
            time.sleep(0.005)  # polling for a condition
        raise AssertionError(f"topic {name} not served within {timeout}s: {last}")


def uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def describe_quorum_epoch(port, timeout=1.0):
    """(leader id, leader epoch) that DescribeQuorum v0 reports on `port`, or None."""
    topic = b"__cluster_metadata"
    body = (uvarint(2) + uvarint(len(topic) + 1) + topic + uvarint(2) + struct.pack(">i", 0)
            + b"\0" + b"\0" + b"\0")
    header = struct.pack(">hhih", 55, 0, 7, 5) + b"probe" + b"\0"
    req = header + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack(">i", len(req)) + req)
            size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
            buf = s.recv(size, socket.MSG_WAITALL)
        pos = 5  # correlation id, header tagged fields
        if struct.unpack_from(">h", buf, pos)[0]:
            return None
        pos += 2
        if buf[pos] < 2:
            return None
        pos += 1
        pos += buf[pos]  # name (compact: length + 1)
        pos += 1  # partitions count
        _index, perr, leader, epoch = struct.unpack_from(">ihii", buf, pos)
    except (OSError, struct.error, IndexError):
        return None
    return (leader, epoch) if perr == 0 and leader >= 0 else None


def describe_quorum(port, timeout=1.0):
    """The leader id DescribeQuorum reports on `port`, or None."""
    v = describe_quorum_epoch(port, timeout)
    return v[0] if v else None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def bench_failover(a):
    """Kill -9 the active controller `rounds` times while an admin client creates and deletes
    topics; the time from each kill to the next change acknowledged; afterwards every
    acknowledged change is on every node and none is applied twice."""
    from confluent_kafka.admin import AdminClient, NewTopic
    c = Cluster(a.nodes, a.binary, brokers=a.brokers).start_all()
    try:
        c.wait_ready()
        created, deleted, times = [], [], []
        seq = 0

        def change(admin, deadline):
            """One CreateTopics (and every third time a DeleteTopics of an earlier topic),
            retried as a client retries (the same topic; "already exists" after a lost answer
            counts as acknowledged). Returns when it was acknowledged."""
            nonlocal seq
            name = f"t{seq}"
            seq += 1
            while time.monotonic() < deadline:
                try:
                    admin.create_topics([NewTopic(name, 2, 1)], request_timeout=2,
                                        operation_timeout=2)[name].result(5)
                except Exception as e:
                    # "already exists": made by an earlier try whose answer was lost.
                    if "already exists" not in str(e):
                        continue
                created.append(name)
                if len(created) % 3 == 0 and len(created) > len(deleted) * 3:
                    victim = created[len(deleted) * 3]
                    try:
                        admin.delete_topics([victim], request_timeout=2,
                                            operation_timeout=2)[victim].result(5)
                        deleted.append(victim)
                    except Exception as e:
                        if "not exist" in str(e) or "UNKNOWN_TOPIC" in str(e):
                            deleted.append(victim)
                return time.monotonic()
            raise AssertionError(f"no change acknowledged (logs in {c.workdir})")

        for r in range(a.rounds):
            leader = c.active_controller()
            admin = AdminClient({"bootstrap.servers": c.bootstrap_of_brokers(exclude=[leader])})
            change(admin, time.monotonic() + 30)
            t0 = time.monotonic()
            c.kill(leader)
            t1 = change(admin, t0 + 30)
            times.append((t1 - t0) * 1000)
            c.start(leader)
            c.wait_ready()
        # Every node has every acknowledged change, once.
        want = set(created) - set(deleted)
        for i in c.brokers():
            names = {n for n in c.metadata(i)["topics"] if n.startswith("t")}
            missing, extra = want - names, names - want - set(created)
            gone = names & set(deleted)
            assert not missing and not gone and not extra, (i, missing, gone, extra)
        print("| figure | measured |\n|---|---|")
        layout = (f"{a.nodes} controller-only + {a.brokers} broker-only nodes" if a.brokers
                  else f"{a.nodes} combined nodes (broker,controller)")
        print(f"| cluster | {layout}, separate processes |")
        print(f"| active controller SIGKILLed -> a metadata change acknowledged again, "
              f"{a.rounds} kills | median {statistics.median(times):.0f} ms, "
              f"max {max(times):.0f} ms, min {min(times):.0f} ms |")
        print(f"| changes acknowledged | {len(created)} topics created, {len(deleted)} deleted; "
              f"all present (or gone) on every node, none twice |")
    finally:
        c.close(a.keep)


def bench_create(a):
    """CreateTopics acknowledged -> every node lists the topic and each partition's leader
    answers for it: p50/p99 over `topics` topics of 3 partitions."""
    from confluent_kafka.admin import AdminClient, NewTopic
    c = Cluster(a.nodes, a.binary, brokers=a.brokers).start_all()
    try:
        c.wait_ready()
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        times = []
        for k in range(a.topics):
            name = f"c{k}"
            admin.create_topics([NewTopic(name, 3, 1)])[name].result(10)
            t0 = time.monotonic()
            c.wait_topic(name, 3)
            times.append((time.monotonic() - t0) * 1000)
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print("| figure | measured |\n|---|---|")
        print(f"| CreateTopics acknowledged -> every broker serves the partitions "
              f"({a.topics} topics x 3 partitions, {a.nodes} nodes) | "
              f"p50 {statistics.median(times):.1f} ms, p99 {p99:.1f} ms, max {times[-1]:.1f} ms |")
    finally:
        c.close(a.keep)


def bench_footprint(a):
    c = Cluster(a.nodes, a.binary, brokers=a.brokers).start_all()
    try:
        c.wait_ready()
        time.sleep(3)
        rss = {i: rss_kib(c.procs[i].pid) for i in c.alive()}
        print("| figure | measured |\n|---|---|")
        for i, kib in sorted(rss.items()):
            print(f"| node {i} ({c.roles[i]}) idle RSS | {kib / 1024:.1f} MiB |")
    finally:
        c.close(a.keep)


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def leader_isr(c, topic):
    """(leader, ISR) of partition 0 as every running broker reports it, or (None, [])."""
    views = set()
    for i in c.brokers():
        m = c.metadata(i, [topic])
        if not m or topic not in m["isr"]:
            return None, []
        views.add((m["topics"][topic].get(0), tuple(m["isr"][topic].get(0, []))))
    if len(views) != 1:
        return None, []
    leader, isr = views.pop()
    return leader, list(isr)


def wait_full_isr(c, topic, size, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader, isr = leader_isr(c, topic)
        if leader in c.brokers() and len(isr) == size:
            return leader
        time.sleep(0.05)  # polling for a condition
    raise AssertionError(f"{topic}: ISR not {size} within {timeout}s (logs in {c.workdir})")


def bench_replication(a):
    """Issue 10's figures on three combined nodes: leader failover (SIGKILL, default
    timeouts unless --fast) with a confluent-kafka idempotent acks=all producer; RF=3 acks=all
    raw produce of 1 MiB batches (tools/bench rawprod) with the three brokers' CPU; and the
    produce-to-consume latency at 1,000 msg/s with acks=all (tools/bench latency)."""
    import threading
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    props = {"min.insync.replicas": "2"}
    if a.fast:
        props.update({"broker.heartbeat.interval.ms": "300", "broker.session.timeout.ms": "2000"})
    c = Cluster(3, a.binary, props=props).start_all()
    bench = os.path.join(ROOT, "tools", "bench", "target", "release", "bench")
    rows = []
    try:
        c.wait_ready()
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        for t in ("failover", "r3", "lat3"):
            admin.create_topics([NewTopic(t, 1, 3)])[t].result(30)
        for t in ("failover", "r3", "lat3"):
            wait_full_isr(c, t, 3)
        if os.path.exists(bench) and a.rounds and not a.skip_throughput:
            leader = wait_full_isr(c, "r3", 3)
            pids = [p.pid for p in c.procs.values()]
            before = sum(cpu_ticks(p) for p in pids)
            out = subprocess.run(
                [bench, "rawprod", "--addr", f"127.0.0.1:{c.ports[leader]}", "--topic", "r3",
                 "--acks", "-1", "--bytes", str(a.gib << 30), "--conns", "4",
                 "--max-secs", "60"], capture_output=True, text=True, check=True).stdout
            ticks = sum(cpu_ticks(p) for p in pids) - before
            res = dict(kv.split("=", 1) for kv in out.split("RESULT", 1)[1].split()
                       if "=" in kv)
            gb = int(res["bytes"]) / 1e9
            rows.append(("RF=3 acks=all raw produce, 1 MiB batches, 4 connections",
                         ">= 300 MB/s", f"{float(res['mb_s']):.0f} MB/s "
                         f"({res['errors']} errors)",
                         f"{ticks / os.sysconf('SC_CLK_TCK') / gb:.2f} CPU-s per GB "
                         "(three brokers)"))
            out = subprocess.run(
                [bench, "latency", "--addr", c.bootstrap, "--topic", "lat3", "--rate", "1000",
                 "--secs", "10"], capture_output=True, text=True, check=True).stdout
            res = dict(kv.split("=", 1) for kv in out.split("RESULT", 1)[1].split()
                       if "=" in kv)
            rows.append(("produce->consume latency, 1,000 msg/s, acks=all, RF=3",
                         "p99 <= 5 ms", f"p50 {res['p50_ms']} / p99 {res['p99_ms']} ms", ""))
        # Failover: the first record sent after the kill acknowledged.
        acked, errors = [], []
        p = Producer({"bootstrap.servers": c.bootstrap, "enable.idempotence": True,
                      "acks": "all", "linger.ms": 2, "message.timeout.ms": 300000,
                      "topic.metadata.refresh.interval.ms": 1000})
        state = {"sent": 0, "stop": False}

        def produce():
            t0 = time.monotonic()
            while not state["stop"]:
                while state["sent"] < int((time.monotonic() - t0) * 200):
                    p.produce("failover", value=str(state["sent"]).encode(), partition=0,
                              on_delivery=lambda e, m: errors.append(e) if e
                              else acked.append(int(m.value())))
                    state["sent"] += 1
                p.poll(0.005)
        th = threading.Thread(target=produce, daemon=True)
        th.start()
        pauses = []
        for _ in range(a.rounds):
            leader = wait_full_isr(c, "failover", 3)
            time.sleep(1)
            c.kill(leader)
            t0, mark = time.monotonic(), state["sent"]
            while not acked or acked[-1] < mark:
                if time.monotonic() - t0 > 120:
                    raise AssertionError(f"no acknowledgement 120 s after killing {leader}")
                time.sleep(0.005)  # polling for a condition
            pauses.append((time.monotonic() - t0) * 1000)
            print(f"killed {leader}: acks resumed after {pauses[-1]:.0f} ms", flush=True)
            c.start(leader)
        wait_full_isr(c, "failover", 3)
        state["stop"] = True
        th.join()
        p.flush(60)
        if errors:
            raise AssertionError(f"delivery errors: {errors[:3]}")
        if pauses:
            session = 2000 if a.fast else 9000
            rows.append((f"leader SIGKILLed -> acks resume, {len(pauses)} kills "
                         f"(broker.session.timeout.ms={session})",
                         f"<= {session + 1000} ms",
                         f"median {statistics.median(pauses):.0f} ms, max {max(pauses):.0f} ms, "
                         f"min {min(pauses):.0f} ms", f"{len(acked)} records acknowledged"))
    finally:
        c.close()
    print("| figure | target | measured | notes |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def run(a):
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT, signal.SIGTERM])
    c = Cluster(a.nodes, a.binary, brokers=a.brokers).start_all()
    try:
        c.wait_ready()
        print(f"bootstrap.servers={c.bootstrap} (data and logs in {c.workdir}); Ctrl-C stops",
              flush=True)
        signal.sigwait([signal.SIGINT, signal.SIGTERM])
    finally:
        c.stop_all()
        c.close(keep=a.keep)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["run", "failover", "create", "footprint", "replication"])
    ap.add_argument("--fast", action="store_true",
                    help="replication: short broker session (2 s) instead of Kafka's 9 s")
    ap.add_argument("--gib", type=int, default=2, help="replication: GiB to produce")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--topics", type=int, default=100)
    ap.add_argument("--brokers", type=int, default=0,
                    help="broker-only nodes beside --nodes controller-only ones (default: "
                         "--nodes combined nodes)")
    ap.add_argument("--binary", default=BINARY)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    {"run": run, "failover": bench_failover, "create": bench_create,
     "footprint": bench_footprint, "replication": bench_replication}[a.what](a)


if __name__ == "__main__":
    sys.exit(main())
