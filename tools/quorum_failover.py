#!/usr/bin/env python3
"""Controller failover on loopback: N controller-only nodes (separate processes, generated
server.properties), the active controller killed with SIGKILL ROUNDS times (restarted after each
kill); for each kill, the time until the surviving voters agree on a new leader in a later epoch,
as DescribeQuorum reports it. Prints a table.

    tools/quorum_failover.py [--nodes 3] [--rounds 10] [--binary target/release/minikafka]

This measures the election itself (Raft election timeout 1-1.5 s, pre-vote on); the brokers'
side, a metadata change acknowledged again, is `tools/cluster.py failover`.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import describe_quorum_epoch as describe_quorum, free_ports  # noqa: E402


def free_port():
    return free_ports(1)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "minikafka"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="quorum-failover-")
    ports = []
    while len(ports) < a.nodes:
        p = free_port()
        if p not in ports:
            ports.append(p)
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(ports))
    procs = {}

    def start(i):
        props = os.path.join(work, f"node{i}.properties")
        with open(props, "w") as f:
            f.write(f"process.roles=controller\nnode.id={i}\ncontroller.quorum.voters={voters}\n"
                    f"listeners=CONTROLLER://127.0.0.1:{ports[i - 1]}\n"
                    f"controller.listener.names=CONTROLLER\nlog.dirs={work}/node{i}\n")
        out = open(os.path.join(work, f"node{i}.out"), "ab")
        procs[i] = subprocess.Popen([a.binary, props], stdout=out, stderr=out,
                                    env={**os.environ, "LOG_LEVEL": "info"})

    def agreed(exclude=None, within=15.0):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            views = [describe_quorum(ports[i - 1]) for i in procs if procs[i].poll() is None]
            if views and all(v is not None and v == views[0] for v in views) \
                    and views[0][0] != exclude:
                return views[0]
            time.sleep(0.005)  # polling for a condition
        raise SystemExit(f"no agreed leader within {within}s (logs in {work})")

    for i in range(1, a.nodes + 1):
        start(i)
    leader, epoch = agreed()
    times = []
    for r in range(a.rounds):
        t0 = time.monotonic()
        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait()
        killed = leader
        survivors = {i: p for i, p in procs.items() if i != killed}
        procs_backup = procs.copy()
        procs.clear()
        procs.update(survivors)
        leader, epoch2 = agreed(exclude=killed)
        took = (time.monotonic() - t0) * 1000
        assert epoch2 > epoch, (epoch, epoch2)
        epoch = epoch2
        times.append(took)
        procs.update({killed: procs_backup[killed]})
        start(killed)
        agreed()
    for p in procs.values():
        p.send_signal(signal.SIGTERM)
    for p in procs.values():
        p.wait()
    print(f"| figure | measured |\n|---|---|")
    print(f"| controllers | {a.nodes} processes on loopback |")
    print(f"| active controller SIGKILLed -> the others agree on a new leader "
          f"(DescribeQuorum), {a.rounds} kills | median {statistics.median(times):.0f} ms, "
          f"max {max(times):.0f} ms, min {min(times):.0f} ms |")
    print(f"| final epoch | {epoch} |")


if __name__ == "__main__":
    sys.exit(main())
