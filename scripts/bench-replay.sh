#!/usr/bin/env bash
# Replay benchmark (docs/performance.md): throughput of `replay` with and without signature
# verification against the parse and verify floors (in one process, and as the whole
# `tb-governor replay` process a user runs), the aggregation alone, and the peak RSS of
# `tb-governor replay` at 100k and 1M blocks.
#
#   scripts/bench-replay.sh                  # everything (the 1M-block chain is simulated once, ~1 min)
#   BENCH_1M=0 scripts/bench-replay.sh       # skip the 1M-block RSS runs
#   BENCH_PROCESS=only scripts/bench-replay.sh   # only the whole-process measurement (~1 min)
#
# Whole process: on a 200-epoch chain (24 000 blocks, 96 000 signatures), BENCH_PROCESS_RUNS rounds of
# (the benchmark's parse and verify floors, one pass each, in their own process; then
# `tb-governor replay --chain … --providers … --chain-id tb-sim --out DIR`, spawn to exit, with
# and without --no-verify, writing to DIR on BENCH_PROCESS_OUT's file system; then the same two
# with --durable); the best of each counts. Targets: the process at ≥ 0.90 of the verify floor,
# --no-verify at ≥ 0.80 of the parse floor.
#
# Environment:
#   BENCH_1M=0|1       run the 1M-block RSS comparison (default 1)
#   BENCH_RUNS=N       quiet passes wanted per measurement (default 3; best one reported)
#   BENCH_QUIET=X      CPUs other processes may use during a quiet pass (default 0.10)
#   BENCH_ONLY=a,b     run only these in-process measurements (names in replay/benches/replay.rs)
#   BENCH_PROCESS=0|1|only  the whole-process measurement: not at all, too (default), or alone
#   BENCH_PROCESS_RUNS=N    its rounds (default 8; the best of each measurement counts)
#   BENCH_PROCESS_OUT=DIR   where it writes (default target/bench-data: the disk a user writes to)
#   BENCH_RSS_ONLY=1   skip the in-process benchmark, only the RSS runs
#   BENCH_RSS=0        skip the RSS runs, only the in-process benchmark
#   BENCH_NO_BUILD=1   use the tb-governor already in target/release instead of building it
#   BENCH_RSS_RUNS=N   repetitions of the no-verify RSS runs (default 3; the max is reported)
#   BENCH_DATA=DIR     where simulated chains are cached (default target/bench-data)
#   BENCH_OUT=DIR      where the RSS runs write snapshots (default /dev/shm when present, so that
#                      one fsync per snapshot does not dominate the wall times)
#
# Simulated chains are cached under $BENCH_DATA/healthy-s1-<blocks> (healthy scenario, seed 1,
# 120-block epochs, chain id tb-sim); delete the directory to regenerate.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

BENCH_1M=${BENCH_1M:-1}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_QUIET=${BENCH_QUIET:-0.10}
BENCH_ONLY=${BENCH_ONLY:-}
BENCH_RSS_ONLY=${BENCH_RSS_ONLY:-0}
BENCH_PROCESS=${BENCH_PROCESS:-1}
BENCH_PROCESS_RUNS=${BENCH_PROCESS_RUNS:-8}
BENCH_RSS=${BENCH_RSS:-1}
BENCH_NO_BUILD=${BENCH_NO_BUILD:-0}
BENCH_RSS_RUNS=${BENCH_RSS_RUNS:-3}
BENCH_DATA=${BENCH_DATA:-$root/target/bench-data}
if [[ -z ${BENCH_OUT:-} ]]; then
    if [[ -d /dev/shm && -w /dev/shm ]]; then BENCH_OUT=/dev/shm; else BENCH_OUT=$BENCH_DATA; fi
fi
case $BENCH_DATA in /*) ;; *) BENCH_DATA=$root/$BENCH_DATA ;; esac
EPOCH_BLOCKS=120
EPOCHS_100K=834  # 100,080 blocks
EPOCHS_1M=8334   # 1,000,080 blocks
EPOCHS_PROCESS=200 # 24,000 blocks
bin=$root/target/release/tb-governor

if [[ ! -x /usr/bin/time ]]; then
    echo "installing GNU time (for peak RSS)" >&2
    sudo=$([[ $(id -u) == 0 ]] || echo sudo)
    $sudo apt-get install -y -qq time >/dev/null
fi

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores visible)"
echo "rustc: $(rustc --version)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== build (release)"
if [[ $BENCH_NO_BUILD != 1 ]]; then
    cargo build --release -p tb-governor
fi
if [[ $BENCH_RSS_ONLY != 1 || $BENCH_PROCESS != 0 ]]; then
    bench_exe=$(cargo bench -p tb-replay --bench replay --no-run --message-format=json |
        grep -o '"executable":"[^"]*/replay-[^"]*"' | cut -d'"' -f4 | tail -1)
    [[ -x $bench_exe ]] || { echo "could not find the replay benchmark's executable" >&2; exit 1; }
fi

# chain_dir EPOCHS: simulate the chain once into the cache, print its directory.
chain_dir() {
    local epochs=$1 blocks=$(($1 * EPOCH_BLOCKS))
    local dir=$BENCH_DATA/healthy-s1-$blocks
    if [[ ! -f $dir/.complete ]]; then
        echo "simulating $blocks blocks into $dir" >&2
        rm -rf "$dir" "$dir.tmp"
        mkdir -p "$BENCH_DATA"
        local start=$SECONDS
        "$bin" simulate --out "$dir.tmp" --epochs "$epochs" --epoch-blocks "$EPOCH_BLOCKS" \
            --seed 1 --scenario healthy --chain-id tb-sim >/dev/null
        touch "$dir.tmp/.complete"
        mv "$dir.tmp" "$dir"
        echo "  simulated in $((SECONDS - start)) s" >&2
    fi
    echo "$dir"
}

# process FLAGS…: microseconds from spawn to exit and peak RSS (KiB) of one `tb-governor replay`
# of the whole-process chain into a fresh output directory. The outputs stay until every round
# is done: deleting hundreds of files just before the next run creates its own makes that run
# pay for the deletion (ext4 without a journal skips recently freed inodes one by one).
process_runs=0
process() {
    local out t0 t1
    process_runs=$((process_runs + 1))
    out=$process_root/run-$process_runs
    t0=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$out.rss" "$bin" replay --chain "$chain_p/chain" \
        --providers "$chain_p/providers.json" --chain-id tb-sim --epoch-blocks $EPOCH_BLOCKS \
        --out "$out" "$@" >/dev/null
    t1=$(date +%s%N)
    echo "$(((t1 - t0) / 1000)) $(cat "$out.rss")"
}

if [[ $BENCH_PROCESS != 0 ]]; then
    chain_p=$(chain_dir $EPOCHS_PROCESS)
    process_out=${BENCH_PROCESS_OUT:-$BENCH_DATA}
    process_root=$process_out/tb-bench-process.$$
    rm -rf "$process_root"
    mkdir -p "$process_root"
    trap 'rm -rf "$process_root"' EXIT
    echo "== whole process on $chain_p, writing under $process_out"
    declare -A BEST
    # keep KEY VALUE: the smallest value of KEY (times); peak KEY VALUE: the largest (RSS).
    keep() { if [[ -z ${BEST[$1]:-} ]] || (($2 < ${BEST[$1]})); then BEST[$1]=$2; fi; }
    peak() { if [[ -z ${BEST[$1]:-} ]] || (($2 > ${BEST[$1]})); then BEST[$1]=$2; fi; }
    report=$BENCH_DATA/floors.$$
    for ((r = 1; r <= BENCH_PROCESS_RUNS; r++)); do
        TB_BENCH_DATA=$chain_p TB_BENCH_ONLY=parse,verify TB_BENCH_RUNS=1 TB_BENCH_MAX_ROUNDS=1 \
            TB_BENCH_REPORT=$report "$bench_exe" >/dev/null 2>&1
        while read -r name secs; do keep "$name" "$(awk -v s="$secs" 'BEGIN { printf "%d", s * 1e6 }')"; done <"$report"
        rm -f "$report"
        line="  round $r: floors parse ${BEST[parse]} µs, verify ${BEST[verify]} µs (best so far);"
        for run in "verify:" "no-verify:--no-verify" "verify durable:--durable" "no-verify durable:--no-verify --durable"; do
            label=${run%%:*}
            # shellcheck disable=SC2086 # the flags are a list
            read -r us kib < <(process ${run#*:})
            keep "process $label" "$us"
            peak "rss $label" "$kib"
            line+=" $label $us µs"
        done
        echo "$line"
    done
    blocks_p=$((EPOCHS_PROCESS * EPOCH_BLOCKS))
    row() { # label key [floor target]
        awk -v l="$1" -v us="${BEST[$2]}" -v f="${3:+${BEST[$3]}}" -v t="${4:-}" -v b="$blocks_p" -v fl="${3:-}" 'BEGIN {
            r = (f != "" ? f / us : 0)
            printf "| %s | %.3f | %.0f | %s | %s | %s |\n", l, us / 1e6, b / (us / 1e6),
                (f != "" ? sprintf("%.3f of the %s floor", r, fl) : ""), (t != "" ? "≥ " t : ""),
                (t != "" ? (r >= t ? "PASS" : "FAIL") : "") }'
    }
    echo
    echo "| measurement ($blocks_p blocks, $(nproc) cores, best of $BENCH_PROCESS_RUNS) | time (s) | blocks/s | ratio | target | result |"
    echo "| --- | ---: | ---: | ---: | --- | --- |"
    row "parse floor: serde_json::Value over all cores" parse
    row "verify floor: verify_strict over all cores" verify
    row "\`tb-governor replay\`, whole process" "process verify" verify 0.90
    row "\`tb-governor replay --no-verify\`, whole process" "process no-verify" parse 0.80
    row "\`tb-governor replay --durable\`" "process verify durable" verify
    row "\`tb-governor replay --no-verify --durable\`" "process no-verify durable" parse
    echo
    echo "peak RSS (KiB): verify ${BEST[rss verify]}, no-verify ${BEST[rss no-verify]}, durable ${BEST[rss verify durable]} / ${BEST[rss no-verify durable]}; output on $(df -P "$process_out" | awk 'NR == 2 { print $1 }') ($(stat -f -c %T "$process_out")); load average $(cut -d' ' -f1-3 /proc/loadavg)"
    if [[ $BENCH_PROCESS == only ]]; then exit 0; fi
fi

chain_100k=$(chain_dir $EPOCHS_100K)

if [[ $BENCH_RSS_ONLY != 1 ]]; then
    echo "== in-process benchmark on $chain_100k"
    export TB_BENCH_DATA=$chain_100k TB_BENCH_RUNS=$BENCH_RUNS TB_BENCH_QUIET=$BENCH_QUIET \
        TB_BENCH_ONLY=$BENCH_ONLY
    "$bench_exe"
fi

if [[ $BENCH_RSS != 1 ]]; then
    exit 0
fi

# rss ENV DIR FLAGS...: peak RSS (KiB) and wall seconds of one `tb-governor replay` run with the
# environment assignments ENV (may be empty).
rss() {
    local env=$1 dir=$2
    shift 2
    local out=$BENCH_OUT/tb-bench-out.$$ report=$BENCH_DATA/time.$$
    rm -rf "$out"
    # shellcheck disable=SC2086 # ENV is a list of assignments
    /usr/bin/time -v -o "$report" env $env "$bin" replay --chain "$dir/chain" \
        --providers "$dir/providers.json" --chain-id tb-sim --epoch-blocks $EPOCH_BLOCKS \
        --out "$out" "$@" >/dev/null
    local kib wall
    kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$report")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$report" |
        awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    rm -rf "$out" "$report"
    echo "$kib $wall"
}

# Runs: label:chain:repetitions:env:flag. Peak RSS is the max over the repetitions (it varies
# from run to run with glibc malloc's heap layout), wall time the min.
runs=("100k verify:$chain_100k:1::" "100k no-verify:$chain_100k:$BENCH_RSS_RUNS::--no-verify")
if [[ $BENCH_1M == 1 ]]; then
    chain_1m=$(chain_dir $EPOCHS_1M)
    runs+=("1M verify:$chain_1m:1::" "1M no-verify:$chain_1m:$BENCH_RSS_RUNS::--no-verify")
    # Diagnostic: the same with glibc's dynamic mmap threshold pinned (see docs/performance.md).
    runs+=("100k no-verify, pinned mmap threshold:$chain_100k:1:MALLOC_MMAP_THRESHOLD_=131072:--no-verify")
    runs+=("1M no-verify, pinned mmap threshold:$chain_1m:1:MALLOC_MMAP_THRESHOLD_=131072:--no-verify")
fi

echo "== peak RSS of tb-governor replay (snapshots written to $BENCH_OUT)"
declare -A RSS WALL
for run in "${runs[@]}"; do
    IFS=: read -r label dir reps env flag <<<"$run"
    for ((i = 1; i <= reps; i++)); do
        echo "  $label ($i/$reps)" >&2
        # shellcheck disable=SC2086 # FLAG is empty or one flag
        read -r kib wall < <(rss "$env" "$dir" $flag)
        if [[ -z ${RSS[$label]:-} || $kib -gt ${RSS[$label]} ]]; then RSS[$label]=$kib; fi
        if [[ -z ${WALL[$label]:-} ]] || awk -v a="$wall" -v b="${WALL[$label]}" 'BEGIN { exit !(a < b) }'; then
            WALL[$label]=$wall
        fi
    done
done

blocks_of() { case $1 in 100k*) echo $((EPOCHS_100K * EPOCH_BLOCKS)) ;; 1M*) echo $((EPOCHS_1M * EPOCH_BLOCKS)) ;; esac; }
printf '\n| %-38s | %9s | %5s | %14s | %8s | %10s |\n' "run" "blocks" "runs" "peak RSS (MiB)" "wall (s)" "blocks/s"
printf '|%s|%s|%s|%s|%s|%s|\n' "----------------------------------------" "----------:" "------:" "---------------:" "---------:" "-----------:"
for run in "${runs[@]}"; do
    IFS=: read -r label dir reps env flag <<<"$run"
    blocks=$(blocks_of "$label")
    awk -v l="$label" -v b="$blocks" -v n="$reps" -v k="${RSS[$label]}" -v w="${WALL[$label]}" \
        'BEGIN { printf "| %-38s | %9d | %5d | %14.1f | %8.2f | %10.0f |\n", l, b, n, k / 1024, w, (w > 0 ? b / w : 0) }'
done
if [[ $BENCH_1M == 1 ]]; then
    echo
    for mode in verify no-verify "no-verify, pinned mmap threshold"; do
        awk -v m="$mode" -v a="${RSS[100k $mode]}" -v b="${RSS[1M $mode]}" 'BEGIN {
            r = b / a
            printf "peak RSS 1M / 100k, %s: %.3f (target <= 1.2): %s\n", m, r, (r <= 1.2 ? "PASS" : "FAIL")
        }'
    done
fi
