#!/usr/bin/env bash
# The one test command: formatting, lints, unit + integration tests, then real-client interop tests
# against the release binary. Ends with "N passed, M failed" and exits non-zero on any failure.
#
#   tools/test.sh                 everything
#   tools/test.sh --quick         skip the interop tests (no release build, no client installs)
#   tools/test.sh --interop-only  only build the release binary and run tests/interop
#
# Interop needs kcat and strace (apt-get), confluent-kafka + kafka-python + aiokafka + pytest (pip) and kafkajs (npm, into
# tests/interop/node_modules from the committed package-lock.json); missing ones are installed here.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/minikafka

mode=all
for arg in "$@"; do
  case "$arg" in
    --quick) mode=quick ;;
    --interop-only) mode=interop ;;
    -h | --help)
      sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "unknown option: $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

PASSED=0
FAILED=0
FAILED_STEPS=()
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

section() { printf '\n===== %s =====\n' "$*"; }

# Record a step that is one check (fmt, clippy, an installer).
check() {
  local name=$1
  shift
  section "$name"
  if "$@"; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1))
    FAILED_STEPS+=("$name")
  fi
}

# Add counts parsed from a runner's output; a failed runner that reported no failures counts as one.
tally() {
  local name=$1 status=$2 passed=$3 failed=$4
  PASSED=$((PASSED + passed))
  FAILED=$((FAILED + failed))
  if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    FAILED=$((FAILED + 1))
  fi
  if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
    FAILED_STEPS+=("$name")
  fi
}

run_cargo_tests() {
  section "cargo test"
  local log=$WORK/cargo-test.log status
  cargo test --all-targets 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  # Doc tests too (--all-targets skips them).
  cargo test --doc 2>&1 | tee -a "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  local p f
  p=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s+=$1} END {print s+0}')
  f=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | awk '{s+=$1} END {print s+0}')
  tally "cargo test" "$status" "$p" "$f"
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi
}

# A command from the Debian package of the same name (kcat; strace, which injects fsync
# failures into the running broker in tests/interop/test_faults.py).
install_apt() {
  local cmd=$1
  command -v "$cmd" >/dev/null && return 0
  echo "installing $cmd (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -qq "$cmd" >/dev/null 2>&1 ||
    { as_root apt-get update -qq && as_root apt-get install -y -qq "$cmd"; }
  command -v "$cmd" >/dev/null
}

install_python_clients() {
  python3 -c 'import confluent_kafka, kafka, aiokafka, snappy, lz4, zstandard, cramjam, pytest, pytest_timeout' 2>/dev/null && return 0
  echo "installing Python clients (tests/interop/requirements.txt)"
  local pip=(python3 -m pip install -q --disable-pip-version-check -r tests/interop/requirements.txt)
  "${pip[@]}" || "${pip[@]}" --break-system-packages || return 1
  python3 -c 'import confluent_kafka, kafka, aiokafka, snappy, lz4, zstandard, cramjam, pytest, pytest_timeout'
}

install_kafkajs() {
  [ -f tests/interop/node_modules/kafkajs/package.json ] && return 0
  command -v npm >/dev/null || { echo "npm is missing (install nodejs and npm)" >&2; return 1; }
  echo "installing kafkajs (npm ci in tests/interop)"
  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
}

run_pytest() {
  section "interop: pytest (kcat, confluent-kafka, kafka-python, aiokafka)"
  local xml=$WORK/pytest.xml status
  MINIKAFKA_BIN=$BIN timeout 1800 \
    python3 -m pytest tests/interop -v --junitxml="$xml" -p no:cacheprovider
  status=$?
  local counts
  counts=$(python3 - "$xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0"); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f)
EOF
)
  # pytest exit 5 = no tests collected: that is a failure here, not a pass.
  tally "interop pytest" "$status" ${counts}
}

run_node() {
  section "interop: node --test (kafkajs)"
  local log=$WORK/node.log status
  MINIKAFKA_BIN=$BIN timeout 900 \
    node --test --test-reporter=tap tests/interop/ 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  local p f
  p=$(grep -E '^# pass ' "$log" | awk '{print $3}' | tail -1)
  f=$(grep -E '^# fail ' "$log" | awk '{print $3}' | tail -1)
  tally "interop node" "$status" "${p:-0}" "${f:-0}"
}

if [ "$mode" != interop ]; then
  check "cargo fmt --check" cargo fmt --all -- --check
  check "cargo clippy" cargo clippy --all-targets -- -D warnings
  run_cargo_tests
fi

if [ "$mode" != quick ]; then
  check "cargo build --release" cargo build --release
  check "install kcat" install_apt kcat
  check "install strace" install_apt strace
  check "install Python clients" install_python_clients
  check "install kafkajs" install_kafkajs
  if [ -x "$BIN" ]; then
    run_pytest
    run_node
    # The long-running tools, briefly: every fuzz target from its seeds (the quorum failover
    # harness runs inside the interop tests).
    check "fuzz smoke (tools/fuzz.sh --smoke)" tools/fuzz.sh --smoke
  else
    echo "no release binary: interop tests not run" >&2
    FAILED=$((FAILED + 1))
    FAILED_STEPS+=("interop (no binary)")
  fi
fi

section "summary"
if [ "${#FAILED_STEPS[@]}" -gt 0 ]; then
  echo "failed: ${FAILED_STEPS[*]}"
fi
echo "${PASSED} passed, ${FAILED} failed"
[ "$FAILED" -eq 0 ]
