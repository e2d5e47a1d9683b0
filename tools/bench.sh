#!/usr/bin/env bash
# Benchmarks the release broker against the targets of the performance issue and prints one
# table: figure | target | measured | broker CPU% | notes.
#
#   tools/bench.sh            build both binaries, run every scenario (a few minutes)
#   BENCH_SKIP_BUILD=1        use the binaries already built
#   BENCH_DROP_CACHES=0       do not drop the page cache before the throughput scenarios
#   BENCH_ONLY=groups         only the consumer-group scenarios (10-12)
#   BENCH_ONLY=cleaner        only the compaction-latency scenario (13)
#   BENCH_ONLY=memory         only the connection-memory scenario (14)
#   BENCH_ONLY=txn            only the transaction scenario (15)
#
# Each scenario gets a fresh broker in a temporary directory on a free loopback port. The
# client is tools/bench (a Cargo project of its own: librdkafka through the rdkafka crate, and
# a raw pipelined producer). Broker CPU is utime+stime from /proc/PID/stat over the measured
# window, CPU% = CPU seconds / wall seconds of that window; RSS is VmRSS from /proc/PID/status.
# Every broker logs its loop-turn histogram when it stops; the second table lists, for each
# broker started, how many loop turns it ran and the p99.9 and longest turn (a stall of the
# one loop shows up there whatever caused it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BROKER=$ROOT/target/release/minikafka
BENCH=$ROOT/tools/bench/target/release/bench
GIB=$((1 << 30))

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    echo "== building the broker (release) and the bench client" >&2
    (cd "$ROOT" && cargo build --release --quiet)
    (cd "$ROOT/tools/bench" && cargo build --release --quiet)
fi
[ -x "$BROKER" ] && [ -x "$BENCH" ] || { echo "missing $BROKER or $BENCH" >&2; exit 1; }

# 10,000 connections on each side (scenario 14), plus the client's own files.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/minikafka-bench.XXXXXX")
BPID=
ADDR=
cleanup() {
    if [ -n "$BPID" ]; then kill -KILL "$BPID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

FIGS=() TARGETS=() MEASURED=() CPUS=() NOTES=()
row() { FIGS+=("$1"); TARGETS+=("$2"); MEASURED+=("$3"); CPUS+=("$4"); NOTES+=("$5"); }
TURNS=() # "name turns p50 p99.9 max" of each broker run, from its shutdown line
BNAME=

# start_broker NAME [server.properties line]...: a fresh broker in $WORK/NAME.
start_broker() {
    local name=$1
    shift
    local dir=$WORK/$name port
    mkdir -p "$dir"
    port=$("$BENCH" freeport)
    local args=()
    if [ $# -gt 0 ]; then
        {
            echo "listeners=PLAINTEXT://127.0.0.1:$port"
            echo "log.dirs=$dir"
            printf '%s\n' "$@"
        } >"$WORK/$name.properties"
        args=("$WORK/$name.properties")
    fi
    # Info: the broker's few info lines include its loop-turn histogram at shutdown.
    BROKER_PORT=$port LOG_DIR=$dir LOG_LEVEL=info "$BROKER" "${args[@]}" 2>"$WORK/$name.log" &
    BPID=$!
    BNAME=$name
    ADDR=127.0.0.1:$port
    if ! "$BENCH" wait --addr "$ADDR" --timeout-ms 20000 >/dev/null; then
        echo "broker $name did not start:" >&2
        tail -20 "$WORK/$name.log" >&2
        exit 1
    fi
}

# Graceful stop (SIGTERM), SIGKILL after 30 s.
stop_broker() {
    [ -n "$BPID" ] || return 0
    kill -TERM "$BPID" 2>/dev/null || true
    for _ in $(seq 300); do
        kill -0 "$BPID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$BPID" 2>/dev/null || true
    wait "$BPID" 2>/dev/null || true
    BPID=
    local t
    t=$(grep -o 'loop turns: .*' "$WORK/$BNAME.log" 2>/dev/null | tail -1)
    if [ -n "$t" ]; then
        TURNS+=("$BNAME $(field turns "$t") $(field p50_ms "$t") $(field p999_ms "$t") $(field max_ms "$t")")
    fi
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# field KEY LINE: the value of KEY=... in a RESULT line.
field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<"$2"; }
# verdict OK?: "ok" or "MISS".
verdict() { if awk "BEGIN {exit !($1)}"; then echo ok; else echo MISS; fi; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
commas() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
drop_caches() {
    [ "${BENCH_DROP_CACHES:-1}" = 1 ] || return 0
    sync
    echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
}
# median_by KEY LINE...: the RESULT line whose KEY is the median.
median_by() {
    local key=$1
    shift
    local l
    for l in "$@"; do echo "$(field "$key" "$l") $l"; done | sort -g | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}' | cut -d' ' -f2-
}
# rounds KEY LINE...: KEY of every round, comma-separated.
rounds() {
    local key=$1
    shift
    local l out=
    for l in "$@"; do out+="${out:+, }$(field "$key" "$l")"; done
    echo "$out"
}
# run CMD...: the RESULT line of a bench command, bounded in time.
run() {
    local out
    if ! out=$(timeout 300 "$BENCH" "$@"); then
        echo "bench $1 failed" >&2
        echo "RESULT failed=1"
        return 0
    fi
    grep '^RESULT' <<<"$out" || echo "RESULT failed=1"
}

T0=$(date +%s)
ONLY=${BENCH_ONLY:-}

# The throughput, latency, start-up and size scenarios (1-9); skipped with any BENCH_ONLY.
if [ -z "$ONLY" ]; then

# --- 1, 4, 7: librdkafka produce and consume of 1,000,000 x 100 B on one broker -----------
# Three rounds of each (the runs are short); the table shows the median round.
echo "== 1/4/7: librdkafka produce + consume (3 rounds each), idle and loaded RSS" >&2
start_broker s1
sleep 0.3
IDLE_RSS=$(rss_kib "$BPID")
PROD=() CONS=()
for i in 1 2 3; do
    "$BENCH" create --addr "$ADDR" --topic "bench$i" >/dev/null
    PROD+=("$(run rdprod --addr "$ADDR" --topic "bench$i" --count 1000000 --size 100 --pid "$BPID")")
    if [ "$i" = 1 ]; then
        sleep 0.3
        LOADED_RSS=$(rss_kib "$BPID")
    fi
done
for i in 1 2 3; do
    CONS+=("$(run rdcons --addr "$ADDR" --topic bench1 --count 1000000 --pid "$BPID")")
done
CONSUMED_RSS=$(rss_kib "$BPID")
R=$(median_by msg_s "${PROD[@]}")
MSGS=$(field msgs "$R")
if [ -n "$MSGS" ]; then
    MSG_S=$(field msg_s "$R")
    CPU=$(field cpu "$R")
    PER_M=$(awk -v c="$CPU" -v n="$MSGS" 'BEGIN {printf "%.3f", c * 1e6 / n}')
    row "1. librdkafka produce 1M x 100 B (acks=1, linger 5 ms, 1 MB batches)" ">= 1,000,000 msg/s" \
        "$(commas "$MSG_S") msg/s" "$(field cpu_pct "$R")%" \
        "$(verdict "$MSG_S >= 1000000"); median of 3: $(commas "$(rounds msg_s "${PROD[@]}")"); $(field failed "$R") failed"
    R=$(median_by cpu "${PROD[@]}")
    row "1. broker CPU per 1M records produced" "<= 0.10 s" "$(field cpu "$R") s" "-" \
        "$(verdict "$(field cpu "$R") <= 0.10"); median of 3: $(rounds cpu "${PROD[@]}") s (10 ms clock ticks)"
else
    row "1. librdkafka produce" ">= 1,000,000 msg/s" "failed" "-" "MISS; see stderr"
fi
R=$(median_by msg_s "${CONS[@]}")
MSG_S=$(field msg_s "$R")
row "4. librdkafka consume 1M from offset 0 (assign, no group)" ">= 1,500,000 msg/s" \
    "$(commas "${MSG_S:-0}") msg/s" "$(field cpu_pct "$R")%" \
    "$(verdict "${MSG_S:-0} >= 1500000"); first to last message, median of 3: $(commas "$(rounds msg_s "${CONS[@]}")"); $(commas "$(field msg_s_total "$R")") msg/s counting the $(field first_msg_s "$R") s from assign() to the first message (librdkafka's offset query)"
row "7. idle RSS after start" "<= 3 MiB" "$(mib "$IDLE_RSS")" "-" "$(verdict "$IDLE_RSS <= 3072"); VmRSS 0.3 s after the first ApiVersions"
row "7. RSS after storing 1M records" "<= 16 MiB" "$(mib "$LOADED_RSS")" "-" \
    "$(verdict "$LOADED_RSS <= 16384"); after the first round of 1; $(mib "$CONSUMED_RSS") after all of 1 and 4 (3M stored, 3M read)"
stop_broker
rm -rf "$WORK/s1"

# --- 5: produce -> consume latency at 1,000 msg/s --------------------------------------
echo "== 5: latency at 1,000 msg/s for 10 s" >&2
sync # write back what scenario 1 left dirty, so the kernel's flusher does not compete
start_broker s5
"$BENCH" create --addr "$ADDR" --topic lat >/dev/null
C0=$(awk '{print $14 + $15}' "/proc/$BPID/stat") W0=$(date +%s.%N)
R=$(run latency --addr "$ADDR" --topic lat --rate 1000 --secs 10)
C1=$(awk '{print $14 + $15}' "/proc/$BPID/stat") W1=$(date +%s.%N)
P99=$(field p99_ms "$R")
LAT_CPU=$(awk -v a="$C0" -v b="$C1" -v t="$(getconf CLK_TCK)" -v w0="$W0" -v w1="$W1" \
    'BEGIN {printf "%.0f", 100 * (b - a) / t / (w1 - w0)}')
row "5. produce->consume latency, 1,000 msg/s, linger 0" "p99 <= 1 ms" \
    "p50 $(field p50_ms "$R") / p99 ${P99:-?} / max $(field max_ms "$R") ms" "${LAT_CPU}%" \
    "$(verdict "${P99:-999} <= 1"); $(field msgs "$R")/$(field sent "$R") received, p99.9 $(field p999_ms "$R") ms; client and broker share 2 cores"
stop_broker

# --- 2: raw pipelined produce into the page cache ---------------------------------------
echo "== 2: raw pipelined produce, 1 MiB batches, acks=1" >&2
drop_caches
# Reference: the same 2 GiB written by dd (the second of two runs: this VM is slow the first
# time its memory is touched, and the broker then reuses the pages dd freed).
for _ in 1 2; do
    DD=$(dd if=/dev/zero of="$WORK/dd.ref" bs=1M count=2048 2>&1 | awk '/copied/ {print $(NF-1), $NF}')
    rm -f "$WORK/dd.ref"
done
drop_caches
start_broker s2
"$BENCH" create --addr "$ADDR" --topic raw >/dev/null
R=$(run rawprod --addr "$ADDR" --topic raw --bytes $((2 * GIB)) --conns 1 --inflight 8 --acks 1 --pid "$BPID")
MB_S=$(field mb_s "$R")
row "2. raw produce, 1 MiB batches, acks=1, 1 conn x 8 in flight" ">= 1,000 MB/s" "${MB_S:-0} MB/s" \
    "$(field cpu_pct "$R")%" \
    "$(verdict "${MB_S:-0} >= 1000"); 2 GiB, $(field errors "$R") errors; dd 2 GiB into the same fs: $DD"
stop_broker
rm -rf "$WORK/s2"

# --- 3: group commit: flush every message, 32 connections with acks=-1 --------------------
echo "== 3: raw produce, log.flush.interval.messages=1, 32 x acks=-1" >&2
drop_caches
start_broker s3 "log.flush.interval.messages=1" "num.partitions=1"
"$BENCH" create --addr "$ADDR" --topic sync >/dev/null
R=$(run rawprod --addr "$ADDR" --topic sync --bytes $((2 * GIB)) --conns 32 --inflight 1 --acks -1 \
    --max-secs 30 --pid "$BPID")
MB_S=$(field mb_s "$R")
row "3. group commit: flush.messages=1, 32 conns x acks=-1" ">= 200 MB/s" "${MB_S:-0} MB/s" \
    "$(field cpu_pct "$R")%" \
    "$(verdict "${MB_S:-0} >= 200"); $(awk -v b="$(field bytes "$R")" 'BEGIN {printf "%.2f", b / 2^30}') GiB in $(field wall "$R") s, $(field errors "$R") errors, 1 request in flight per conn"
stop_broker
rm -rf "$WORK/s3"

# --- 9: 1,000 concurrent producing connections -------------------------------------------
echo "== 9: 1,000 concurrent connections" >&2
start_broker s9
"$BENCH" create --addr "$ADDR" --topic many >/dev/null
R=$(run manyconns --addr "$ADDR" --topic many --conns 1000 --requests 5 --records 10)
OK=$(field ok "$R")
row "9. 1,000 concurrent connections producing" "1,000 ok" "${OK:-0} ok" "-" \
    "$(verdict "${OK:-0} >= 1000"); 5 x 10-record batches each, all open at once; $(field wall "$R") s; first error: $(field first_error "$R")"
stop_broker

# --- 8: start-up time ---------------------------------------------------------------------
echo "== 8: start-up, empty dir and ~1 GiB of log" >&2
R=$(run startup --broker "$BROKER" --dir "$WORK/s8e" --runs 9 --fresh)
S=$(field serve_ms "$R")
row "8. start to serving, empty dir (median of 9)" "<= 10 ms" "$S ms" "-" \
    "$(verdict "${S:-999} <= 10"); connect() accepted at $(field connect_ms "$R") ms, first ApiVersions answered at $S ms"
start_broker s8
"$BENCH" create --addr "$ADDR" --topic full >/dev/null
run rawprod --addr "$ADDR" --topic full --bytes "$GIB" --inflight 8 >/dev/null
stop_broker
SIZE=$(du -sm "$WORK/s8" | cut -f1)
R=$(run startup --broker "$BROKER" --dir "$WORK/s8" --runs 7)
S=$(field serve_ms "$R")
row "8. start to serving, ${SIZE} MB of log after clean stop (median of 7)" "<= 50 ms" "$S ms" "-" \
    "$(verdict "${S:-999} <= 50"); connect() accepted at $(field connect_ms "$R") ms; runs: $(field serve_all "$R")"
rm -rf "$WORK/s8"

# --- 6: binary size -----------------------------------------------------------------------
BYTES=$(stat -c %s "$BROKER")
STRIPPED=$(file -b "$BROKER" 2>/dev/null | grep -o 'not stripped\|stripped' || echo "?")
row "6. release binary size" "<= 3 MB" "$(awk -v b="$BYTES" 'BEGIN {printf "%.2f MB", b / 1e6}')" "-" \
    "$(verdict "$BYTES <= 3000000"); $BYTES bytes, $STRIPPED"
fi # scenarios 1-9

if [ -z "$ONLY" ] || [ "$ONLY" = groups ]; then
# --- 10: a consumer SIGKILLed: its partitions consumed by the survivors --------------------
echo "== 10: failover of a SIGKILLed group member (3 rounds)" >&2
start_broker s10 "group.initial.rebalance.delay.ms=0"
FAIL=()
for i in 1 2 3; do
    "$BENCH" create --addr "$ADDR" --topic "fail$i" --partitions 6 >/dev/null
    C0=$(awk '{print $14 + $15}' "/proc/$BPID/stat") W0=$(date +%s.%N)
    R=$(run failover --addr "$ADDR" --topic "fail$i" --partitions 6 --session-ms 6000 --heartbeat-ms 100 --rate 2000)
    C1=$(awk '{print $14 + $15}' "/proc/$BPID/stat") W1=$(date +%s.%N)
    FAIL+=("$R cpu_pct=$(awk -v a="$C0" -v b="$C1" -v t="$(getconf CLK_TCK)" -v w0="$W0" -v w1="$W1" \
        'BEGIN {printf "%.0f", 100 * (b - a) / t / (w1 - w0)}')")
done
R=$(median_by over_session_from_last_hb_ms "${FAIL[@]}")
OVER=$(field over_session_from_last_hb_ms "$R") KOVER=$(field over_session_ms "$R")
signed() { awk -v x="$1" 'BEGIN {if (x == "" || x == "none") print "+ ?"; else if (x < 0) printf "- %.1f", -x; else printf "+ %.1f", x}'; }
row "10. member SIGKILLed -> survivors consume its partitions (3 x rdkafka, 6 partitions)" \
    "session + < 100 ms" "session $(signed "$OVER") ms (kill: session $(signed "$KOVER") ms)" "$(field cpu_pct "$R")%" \
    "$(verdict "${OVER:-999} < 100 && ${KOVER:-999} < 100"); session.timeout.ms=6000, heartbeat.interval.ms=100; from the dead member's last Heartbeat/OffsetCommit (when the broker's session clock starts), median of 3: session + $(rounds over_session_from_last_hb_ms "${FAIL[@]}") ms; from the kill: session + $(rounds over_session_ms "${FAIL[@]}") ms (last Heartbeat/OffsetCommit $(rounds last_hb_before_kill_ms "${FAIL[@]}") ms before the kill); survivors' revoke at $(field revoke_ms "$R") ms, assign at $(field assign_ms "$R") ms, first message at $(field failover_ms "$R") ms after the kill; 2,000 msg/s produced"
stop_broker

# --- 11: 100 members, 100 partitions: join/sync, then a LeaveGroup and the 99 rejoin ---------
echo "== 11: 100-member group rebalance (3 rounds)" >&2
start_broker s11 "group.initial.rebalance.delay.ms=0"
"$BENCH" create --addr "$ADDR" --topic members --partitions 100 >/dev/null
REB=()
for i in 1 2 3; do
    REB+=("$(run rebalance --addr "$ADDR" --topic members --members 100 --partitions 100 --pid "$BPID")")
done
R=$(median_by join1_ms "${REB[@]}")
J1=$(field join1_ms "$R")
row "11. 100 members join, 100 partitions (JoinGroup v5 -> all SyncGroup answers)" "< 1 s" "${J1:-?} ms" \
    "$(field cpu_pct "$R")%" \
    "$(verdict "${J1:-9999} < 1000"); delay.ms=0; from the last rejoin sent (after the MEMBER_ID_REQUIRED round), median of 3: $(rounds join1_ms "${REB[@]}") ms; JoinGroups sent: $(rounds joins1 "${REB[@]}"); final generation $(field generation1 "$R"); $(field failed "$R") members failed $(field first_error "$R")"
R=$(median_by leave2_ms "${REB[@]}")
L2=$(field leave2_ms "$R")
row "11. one member leaves (LeaveGroup), the 99 rejoin" "< 1 s" "${L2:-?} ms" "-" \
    "$(verdict "${L2:-9999} < 1000"); from the LeaveGroup sent to 99 SyncGroup answers, median of 3: $(rounds leave2_ms "${REB[@]}") ms; from the last rejoin sent: $(rounds join2_ms "${REB[@]}") ms; JoinGroups: $(rounds joins2 "${REB[@]}")"
stop_broker

# --- 12: sustained offset commits from one client ----------------------------------------
echo "== 12: OffsetCommit v8 loop, 100 partitions, 16 in flight, 10 s" >&2
start_broker s12 "group.initial.rebalance.delay.ms=0"
"$BENCH" create --addr "$ADDR" --topic commits --partitions 100 >/dev/null
R=$(run commits --addr "$ADDR" --topic commits --partitions 100 --per-request 1 --inflight 16 --secs 10 --pid "$BPID")
C_S=$(field commits_s "$R") N=$(field requests "$R")
RS=$(field rss_start_kib "$R") RE=$(field rss_end_kib "$R") RM=$(field rss_max_kib "$R")
AS=$(field anon_start_kib "$R") AE=$(field anon_end_kib "$R")
OFFS=$(du -sk "$WORK/s12"/__consumer_offsets-* 2>/dev/null | awk '{s += $1} END {print s + 0}')
SEGS=$(find "$WORK/s12" -path '*__consumer_offsets-*' -name '*.log' -size +0 | wc -l)
GROW_M=$(awk -v a="${RS:-0}" -v b="${RM:-0}" -v n="${N:-0}" 'BEGIN {printf "%.0f", (n > 0 ? (b - a) * 1e6 / n : 0)}')
row "12. OffsetCommit v8 from one client (1 partition each, 100 partitions, 16 in flight)" \
    ">= 10,000/s, flat RSS" "$(commas "${C_S:-0}")/s; RSS $(mib "${RS:-0}") -> $(mib "${RE:-0}")" \
    "$(field cpu_pct "$R")%" \
    "$(verdict "${C_S:-0} >= 10000"); RSS $(verdict "${RM:-0} - ${RS:-0} <= 256") (grew $GROW_M KiB per 1M commits, RssAnon $(mib "${AS:-0}") -> $(mib "${AE:-0}"); start = after a first commit of all 100 partitions; per second: $(field rss_series_kib "$R") KiB); $(commas "$N") commits in $(field wall "$R") s, $(field errors "$R") errors $(field first_error "$R"); __consumer_offsets on disk: $(mib "$OFFS") in $SEGS segments"
stop_broker

fi # scenarios 10-12

# --- 13: produce latency while a ~1 GB compacted partition is cleaned ----------------------
if [ -z "$ONLY" ] || [ "$ONLY" = cleaner ]; then
echo "== 13: 1,000 produce/s to another topic while compacting a ~1 GiB partition (3 rounds)" >&2
# Each round: a fresh broker; the fill (1 GiB of 1 KiB values over 100,000 keys, all stamped
# t0) finishes before min.compaction.lag.ms=8000 lets the cleaner start; the latency client runs
# from before that until the partition appears in cleaner-offset-checkpoint.
CLEAN=()
for i in 1 2 3; do
    sync
    start_broker "s13-$i"
    CLEAN+=("$(run cleaner --addr "$ADDR" --dir "$WORK/s13-$i" --topic compacted --lat-topic lat13 --bytes "$GIB" \
        --keys 100000 --value 1024 --rate 1000 --lag-ms 8000 --segment-bytes 104857600 --max-secs 150 --pid "$BPID")")
    stop_broker
    rm -rf "$WORK/s13-$i"
done
R=$(median_by p99_ms "${CLEAN[@]}")
P99=$(field p99_ms "$R") DONE=$(field done "$R")
BB=$(field bytes_before "$R") BA=$(field bytes_after "$R")
row "13. produce latency (1 in flight, acks=1, 1,000 req/s) while cleaning a 1 GiB compacted partition" \
    "p99 < 10 ms" "p50 $(field p50_ms "$R") / p99 ${P99:-?} / max $(field max_ms "$R") ms" "$(field cpu_pct "$R")%" \
    "$(verdict "${P99:-999} < 10 && ${DONE:-0} == 1"); median of 3, p99: $(rounds p99_ms "${CLEAN[@]}") ms, max: $(rounds max_ms "${CLEAN[@]}") ms; cleaned in $(field clean_secs "$R") s (finished: ${DONE:-0}), $(mib "$((${BB:-0} / 1024))") -> $(mib "$((${BA:-0} / 1024))") in $(field segments "$R") segments; p99.9 $(field during_p999 "$R") ms over $(field during_n "$R") requests ($(field req_s "$R")/s), $(field errors "$R") errors; outside cleaning p50 $(field idle_p50 "$R") / p99 $(field idle_p99 "$R") ms; slowest ms@ms-into-clean: $(field slowest "$R"); fill $(field fill_secs "$R") s"
fi # scenario 13

# --- 14: memory against connections: a flood of 2,000, and 10,000 idle ---------------------
if [ -z "$ONLY" ] || [ "$ONLY" = memory ]; then
echo "== 14: 2,000 connections opened and closed; 10,000 idle connections" >&2
start_broker s14
R=$(run connflood --addr "$ADDR" --pid "$BPID" --conns 2000 --after-secs 5)
IDLE=$(field rss_idle_kib "$R") OPEN=$(field rss_open_kib "$R") AFTER=$(field rss_after_kib "$R")
row "14. RSS 5 s after 2,000 connections (each served an ApiVersions) closed" "<= idle + 16 MiB" \
    "$(mib "${AFTER:-0}") (idle $(mib "${IDLE:-0}"))" "-" \
    "$(verdict "${AFTER:-999999} - ${IDLE:-0} <= 16384"); $(mib "${OPEN:-0}") with all 2,000 open, $(mib "$(field rss_closed_kib "$R")") right after they closed (closed by the broker in $(field drained_ms "$R") ms); opened in $(field opened_s "$R") s"
stop_broker
start_broker s14i
R=$(run idleconns --addr "$ADDR" --pid "$BPID" --conns 10000)
RSS=$(field rss_kib "$R")
row "14. RSS with 10,000 idle connections" "<= 64 MiB" "$(mib "${RSS:-999999}")" "-" \
    "$(verdict "${RSS:-999999} <= 65536"); $(field bytes_per_conn "$R") bytes per connection above $(mib "$(field rss_before_kib "$R")") before; opened in $(field opened_s "$R") s; an ApiVersions on an old connection meanwhile: $(field probe_ms "$R") ms"
stop_broker
fi # scenario 14

# --- 15: transactions ----------------------------------------------------------------------
if [ -z "$ONLY" ] || [ "$ONLY" = txn ]; then
echo "== 15: transactional produce, EndTxn round trips, read_committed consume, restart with 10,000 producers" >&2
start_broker s15
"$BENCH" create --addr "$ADDR" --topic txn15 >/dev/null
TXP=()
for i in 1 2 3; do
    "$BENCH" create --addr "$ADDR" --topic "txn15-$i" >/dev/null
    TXP+=("$(run txnprod --addr "$ADDR" --topic "txn15-$i" --count 1000000 --per-txn 1000 --linger-ms 1 --wait-delivery --pid "$BPID")")
done
R=$(median_by msg_s "${TXP[@]}")
MSG_S=$(field msg_s "$R")
row "15. librdkafka transactional produce 1M x 100 B, transactions of 1,000 (commit after delivery)" ">= 500,000 msg/s" \
    "$(commas "${MSG_S:-0}") msg/s" "$(field cpu_pct "$R")%" \
    "$(verdict "${MSG_S:-0} >= 500000"); median of 3: $(commas "$(rounds msg_s "${TXP[@]}")"); broker CPU $(field cpu "$R") s per 1M; linger.ms=1"
R=$(median_by commit_p99_ms "${TXP[@]}")
row "15. EndTxn round trip (commit_transaction after the records were delivered)" "p99 <= 2 ms" \
    "p50 $(field commit_p50_ms "$R") / p99 $(field commit_p99_ms "$R") / max $(field commit_max_ms "$R") ms" "-" \
    "$(verdict "$(field commit_p99_ms "$R") <= 2"); 1,000 commits per round, median of 3 p99: $(rounds commit_p99_ms "${TXP[@]}") ms"
RU=$(run rdcons --addr "$ADDR" --topic txn15-1 --count 1000000 --pid "$BPID")
RC=$(run rdcons --addr "$ADDR" --topic txn15-1 --count 1000000 --pid "$BPID" --isolation read_committed)
U=$(field msg_s "$RU") C=$(field msg_s "$RC")
row "15. read_committed consume of those records vs read_uncommitted" "within 10 %" \
    "$(commas "${C:-0}") vs $(commas "${U:-0}") msg/s" "$(field cpu_pct "$RC")%" \
    "$(verdict "${C:-0} >= 0.9 * ${U:-1}"); first to last message, 1,000 markers among the records"
"$BENCH" create --addr "$ADDR" --topic pids15 >/dev/null
F=$(run pidfill --addr "$ADDR" --topic pids15 --bytes "$GIB" --producers 10000)
stop_broker
R=$(run startup --broker "$BROKER" --dir "$WORK/s15" --runs 7)
SERVE=$(field serve_ms "$R")
row "15. restart over a 1 GB log written by 10,000 producer ids, after a clean shutdown" "<= 100 ms" \
    "${SERVE:-?} ms" "-" \
    "$(verdict "${SERVE:-999} <= 100"); start to first ApiVersions answer, median of 7: $(field serve_all "$R") ms; fill: $(field batches "$F") batches in $(field secs "$F") s; producer state from the .snapshot plus at most 16 MiB of replay"
rm -rf "$WORK/s15"
fi # scenario 15

# --- the table ------------------------------------------------------------------------------
echo
echo "minikafka benchmarks: commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, $(uname -r), $(($(date +%s) - T0)) s"
echo
W0=8 W1=6 W2=8 W3=11
for i in "${!FIGS[@]}"; do
    ((${#FIGS[i]} > W0)) && W0=${#FIGS[i]}
    ((${#TARGETS[i]} > W1)) && W1=${#TARGETS[i]}
    ((${#MEASURED[i]} > W2)) && W2=${#MEASURED[i]}
    ((${#CPUS[i]} > W3)) && W3=${#CPUS[i]}
done
printf "| %-${W0}s | %-${W1}s | %-${W2}s | %-${W3}s | %s\n" figure target measured "broker CPU%" notes
printf "|-%s-|-%s-|-%s-|-%s-|-%s\n" "$(printf '%*s' "$W0" '' | tr ' ' -)" "$(printf '%*s' "$W1" '' | tr ' ' -)" \
    "$(printf '%*s' "$W2" '' | tr ' ' -)" "$(printf '%*s' "$W3" '' | tr ' ' -)" "-----"
for i in "${!FIGS[@]}"; do
    printf "| %-${W0}s | %-${W1}s | %-${W2}s | %-${W3}s | %s\n" "${FIGS[i]}" "${TARGETS[i]}" "${MEASURED[i]}" "${CPUS[i]}" "${NOTES[i]}"
done

if [ ${#TURNS[@]} -gt 0 ]; then
    echo
    echo "Loop turns of each broker run (from its shutdown line; a turn = the work after one poll):"
    echo
    printf "| %-12s | %10s | %8s | %10s | %10s |\n" broker turns "p50 ms" "p99.9 ms" "max ms"
    printf "|-%s-|-%s-|-%s-|-%s-|-%s-|\n" "------------" "----------" "--------" "----------" "----------"
    for t in "${TURNS[@]}"; do
        # shellcheck disable=SC2086
        printf "| %-12s | %10s | %8s | %10s | %10s |\n" $t
    done
fi
