"""kcat (Debian's package, librdkafka 2.0.2): produce 100,000 keyed messages with headers to a
3-partition topic, read them back with `kcat -C -e` and compare everything."""

import collections
import json
import shutil
import subprocess

import pytest

from conftest import create_topics

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
TOTAL = 100_000
RUNS = 4  # kcat -H applies to every message of a run: vary headers per run


def kcat(*args, stdin=None, timeout=300):
    proc = subprocess.run(
        [KCAT, *args],
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"kcat {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]!r}"
    return proc


def message(i):
    # Keys never contain ':' (the -K delimiter); values may (only the first ':' splits).
    return f"key-{i:06d}", f"value:{i}:" + "x" * (i % 97)


def run_headers(run):
    return [f"run={run}", f"trace=t{run * 7}-{'h' * run}"]


@pytest.mark.skipif(KCAT is None, reason="kcat is not installed (tools/test.sh installs it)")
def test_kcat_keys_values_headers_order(broker):
    topic = "kcat-three"
    create_topics(broker.bootstrap, [(topic, 3)])

    per_run = TOTAL // RUNS
    for run in range(RUNS):
        lines = []
        for i in range(run * per_run, (run + 1) * per_run):
            k, v = message(i)
            lines.append(f"{k}:{v}\n")
        hdr_args = []
        for h in run_headers(run):
            hdr_args += ["-H", h]
        kcat(
            "-P", "-b", broker.bootstrap, "-t", topic, "-K", ":",
            *hdr_args,
            "-X", "linger.ms=20",
            "-X", "acks=all",
            stdin="".join(lines).encode(),
        )

    # Metadata as kcat sees it.
    md = json.loads(kcat("-L", "-J", "-b", broker.bootstrap, "-t", topic).stdout)
    (t,) = [t for t in md["topics"] if t["topic"] == topic]
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]

    out = kcat(
        "-C", "-b", broker.bootstrap, "-t", topic, "-e", "-o", "beginning", "-q",
        "-f", "%p\t%o\t%k\t%h\t%s\n",
    ).stdout.decode()
    rows = [line.split("\t", 4) for line in out.split("\n") if line]
    assert len(rows) == TOTAL, f"read {len(rows)} messages, produced {TOTAL}"

    by_partition = collections.defaultdict(list)
    seen = set()
    for p, o, k, h, v in rows:
        i = int(k.split("-")[1])
        assert (k, v) == message(i), f"message {i} came back altered: {k!r} {v!r}"
        run = i // per_run
        assert h == ",".join(run_headers(run)), f"headers of message {i}: {h!r}"
        assert i not in seen, f"message {i} read twice"
        seen.add(i)
        by_partition[int(p)].append((int(o), i))
    assert len(seen) == TOTAL

    assert set(by_partition) == {0, 1, 2}, "keyed messages should spread over all partitions"
    for p, items in by_partition.items():
        offsets = [o for o, _ in items]
        assert offsets == list(range(len(items))), f"partition {p}: offsets not 0..n-1"
        ids = [i for _, i in items]
        assert ids == sorted(ids), f"partition {p}: produce order not preserved"
