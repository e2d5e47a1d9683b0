#!/bin/sh
# CodeCrafters entry point: `./your_program.sh /tmp/server.properties`, started from another
# working directory. Builds the release binary once (quietly: the harness reads at most 30 KB of
# output), then replaces this shell with the broker so signals reach it directly.
set -e
cd "$(dirname "$0")"
if [ ! -x target/release/minikafka ]; then
  cargo build --release --quiet >/tmp/minikafka-build.log 2>&1 || {
    echo "cargo build --release failed; see /tmp/minikafka-build.log" >&2
    tail -n 40 /tmp/minikafka-build.log >&2
    exit 1
  }
fi
exec target/release/minikafka "$@"
