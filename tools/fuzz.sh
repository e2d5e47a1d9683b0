#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of the broker's input paths. Targets and what
# they check: fuzz/src/lib.rs. Builds the targets, runs each for the given time, one at a time,
# and prints a table: target, runs, executions, exec/s, corpus size, coverage, crashes.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]   each target (default: all) for SECONDS (default 60)
#   tools/fuzz.sh --smoke                 each target for a few seconds, unoptimised build (CI);
#                                         skips with a message when no nightly toolchain can be had
#   tools/fuzz.sh --seeds                 regenerate the committed seed corpora (fuzz/seeds/)
#   tools/fuzz.sh --totals                executions so far per target, from fuzz/logs/summary.tsv
#   tools/fuzz.sh --until N [SECONDS]     rounds of the above until N executions are recorded in
#                                         all (e.g. --until 100000000 1200 for the issue's 100 M)
#
# The corpus grows in fuzz/corpus/<target>/ (seeds are read from fuzz/seeds/<target>/), crash
# inputs land in fuzz/artifacts/<target>/, logs in fuzz/logs/ (all git-ignored). A crash does not
# stop the run: the target restarts (at most FUZZ_MAX_CRASHES=5 times). Replay one with
#   fuzz/target/x86_64-unknown-linux-gnu/release/<target> <file>
# and add it to tests/fuzz_regressions/ (see tests/fuzz_regressions.rs).
#
# Everything runs under `nice -n 19`. Limits: -rss_limit_mb=2048 and -malloc_limit_mb=128 (no
# input of at most -max_len bytes needs a larger single allocation), -timeout=10 per input.
# Needs rustup: installs the nightly toolchain (--profile minimal, ~15 s) and cargo-fuzz (~40 s)
# when missing, unless FUZZ_NO_INSTALL=1.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
FUZZ=$ROOT/fuzz
ALL_TARGETS=(broker_frame request_decoders record_batch codecs metadata_replay offsets_replay)

secs=60
smoke=0
targets=()
case "${1:-}" in
  -h | --help)
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  --seeds)
    echo "regenerating fuzz/seeds (cargo test --lib fuzzing::write_seed_corpora -- --ignored)"
    exec cargo test --lib fuzzing::write_seed_corpora -- --ignored
    ;;
  --until)
    goal=${2:?--until needs a number of executions}
    shift 2
    recorded() { awk -F'\t' '{s += $4} END {print s + 0}' "$FUZZ/logs/summary.tsv" 2>/dev/null || echo 0; }
    while [ "$(recorded)" -lt "$goal" ]; do
      echo "fuzz: round at $(date -u +%FT%TZ), $(recorded) executions recorded so far"
      # A failed build (the tree mid-edit) or a crash: wait a little, go on.
      "$0" "$@" || sleep 60
    done
    exec "$0" --totals
    ;;
  --totals)
    if [ ! -s "$FUZZ/logs/summary.tsv" ]; then
      echo "no runs recorded yet (fuzz/logs/summary.tsv)"
      exit 0
    fi
    awk -F'\t' '
      { runs[$2] += 1; ex[$2] += $4; t[$2] += $3; cr[$2] += $8; corp[$2] = $6; cov[$2] = $7 }
      END {
        printf "%-18s %6s %14s %10s %9s %8s %8s\n", "target", "runs", "executions", "exec/s", "seconds", "corpus", "crashes"
        for (k in ex) {
          printf "%-18s %6d %14d %10d %9d %8d %8d\n", k, runs[k], ex[k], (t[k] ? ex[k] / t[k] : 0), t[k], corp[k], cr[k]
          total += ex[k]
        }
        printf "total executions: %d\n", total
      }' "$FUZZ/logs/summary.tsv"
    exit 0
    ;;
  --smoke)
    smoke=1
    secs=${FUZZ_SMOKE_SECONDS:-5}
    shift
    ;;
  '') ;;
  *)
    if [[ "$1" =~ ^[0-9]+$ ]]; then
      secs=$1
      shift
    fi
    ;;
esac
for t in "$@"; do
  if [[ ! " ${ALL_TARGETS[*]} " =~ " $t " ]]; then
    echo "unknown target: $t (targets: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
  targets+=("$t")
done
[ "${#targets[@]}" -eq 0 ] && targets=("${ALL_TARGETS[@]}")

skip() {
  echo "fuzz: SKIPPED: $*"
  exit 0
}

# ------------------------------------------------------------------ toolchain
if ! command -v rustup >/dev/null 2>&1; then
  [ "$smoke" = 1 ] && skip "no rustup, so no nightly toolchain for cargo-fuzz"
  echo "fuzz: cargo-fuzz needs a nightly toolchain through rustup" >&2
  exit 1
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  if [ "${FUZZ_NO_INSTALL:-0}" = 1 ]; then
    [ "$smoke" = 1 ] && skip "no nightly toolchain (FUZZ_NO_INSTALL=1)"
    echo "fuzz: no nightly toolchain (rustup toolchain install nightly --profile minimal)" >&2
    exit 1
  fi
  echo "fuzz: installing the nightly toolchain (minimal profile)"
  if ! rustup toolchain install nightly --profile minimal --no-self-update; then
    [ "$smoke" = 1 ] && skip "could not install the nightly toolchain"
    exit 1
  fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  if [ "${FUZZ_NO_INSTALL:-0}" = 1 ]; then
    [ "$smoke" = 1 ] && skip "no cargo-fuzz (FUZZ_NO_INSTALL=1)"
    echo "fuzz: cargo-fuzz is missing (cargo install cargo-fuzz)" >&2
    exit 1
  fi
  echo "fuzz: installing cargo-fuzz"
  if ! nice -n 19 cargo install cargo-fuzz --locked --quiet; then
    [ "$smoke" = 1 ] && skip "could not install cargo-fuzz"
    exit 1
  fi
fi

# ------------------------------------------------------------------ build
triple=$(rustup run nightly rustc -vV | sed -n 's/^host: //p')
if [ "$smoke" = 1 ]; then
  # Unoptimised (with debug assertions and overflow checks): builds in about half the time.
  build_flags=(--dev)
  bindir=$FUZZ/target/$triple/debug
else
  # Optimised, with debug assertions and overflow checks: an arithmetic overflow is a crash.
  build_flags=(-O --debug-assertions)
  bindir=$FUZZ/target/$triple/release
fi
echo "fuzz: building the targets (cargo +nightly fuzz build ${build_flags[*]})"
mkdir -p "$FUZZ/logs"
build_start=$(date +%s)
if ! (cd "$FUZZ" && nice -n 19 cargo +nightly fuzz build "${build_flags[@]}") >"$FUZZ/logs/build.log" 2>&1; then
  tail -30 "$FUZZ/logs/build.log" >&2
  echo "fuzz: build failed (fuzz/logs/build.log)" >&2
  exit 1
fi
for t in "${targets[@]}"; do
  if [ ! -x "$bindir/$t" ]; then
    echo "fuzz: build failed: no $bindir/$t" >&2
    exit 1
  fi
done
echo "fuzz: built in $(($(date +%s) - build_start)) s"

# ------------------------------------------------------------------ run
# The harness's scratch files (brokers, metadata logs): tmpfs when there is one.
SCRATCH=$(mktemp -d "${FUZZ_SCRATCH:-$([ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")}/minikafka-fuzz.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
export MINIKAFKA_FUZZ_TMP=$SCRATCH

max_len() {
  case "$1" in
    request_decoders) echo 4096 ;;
    *) echo 16384 ;;
  esac
}

rows=()
total_execs=0
total_crashes=0
for t in "${targets[@]}"; do
  corpus=$FUZZ/corpus/$t
  # A smoke run starts from the committed seeds alone (quick and the same everywhere).
  [ "$smoke" = 1 ] && corpus=$SCRATCH/corpus/$t
  artifacts=$FUZZ/artifacts/$t
  log=$FUZZ/logs/$t.log
  mkdir -p "$corpus" "$artifacts"
  : >"$log"
  start=$(date +%s)
  deadline=$((start + secs))
  runs=0
  execs=0
  crashes=0
  cov=0
  while :; do
    left=$((deadline - $(date +%s)))
    [ "$left" -le 0 ] && break
    runs=$((runs + 1))
    before=$(find "$artifacts" -type f | wc -l)
    # ASan's leak checker would flag the broker kept for the whole process; RSS is capped instead.
    ASAN_OPTIONS=detect_leaks=0 nice -n 19 "$bindir/$t" "$corpus" "$FUZZ/seeds/$t" \
      -max_total_time="$left" -rss_limit_mb=2048 -malloc_limit_mb=128 -timeout=10 \
      -max_len="$(max_len "$t")" -print_final_stats=1 -artifact_prefix="$artifacts/" \
      >>"$log" 2>&1
    rc=$?
    after=$(find "$artifacts" -type f | wc -l)
    n=$(grep -a 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
    execs=$((execs + ${n:-0}))
    c=$(grep -aoE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    cov=${c:-$cov}
    if [ "$after" -gt "$before" ] || [ "$rc" -ne 0 ]; then
      crashes=$((crashes + 1))
      echo "fuzz: $t: crash (exit $rc), input in fuzz/artifacts/$t/ (log: fuzz/logs/$t.log)" >&2
      [ "$crashes" -ge "${FUZZ_MAX_CRASHES:-5}" ] && break
    else
      break
    fi
  done
  took=$(($(date +%s) - start))
  [ "$took" -le 0 ] && took=1
  size=$(find "$corpus" -type f | wc -l)
  # Smoke runs are not counted in the totals.
  [ "$smoke" = 1 ] || printf '%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n' "$(date -u +%FT%TZ)" "$t" "$took" \
    "$execs" "$runs" "$size" "$cov" "$crashes" >>"$FUZZ/logs/summary.tsv"
  rows+=("$(printf '%-18s %5d %13d %9d %8d %7d %8d' "$t" "$runs" "$execs" $((execs / took)) "$size" "$cov" "$crashes")")
  total_execs=$((total_execs + execs))
  total_crashes=$((total_crashes + crashes))
done

printf '\n%-18s %5s %13s %9s %8s %7s %8s\n' target runs executions exec/s corpus cov crashes
printf '%s\n' "${rows[@]}"
echo "total: $total_execs executions, $total_crashes crashes (all runs so far: tools/fuzz.sh --totals)"
[ "$total_crashes" -eq 0 ]
