#!/usr/bin/env bash
# Daemon benchmark (docs/performance.md, "Daemon"). One run reports:
#   - per-epoch close cost at 1k and at 100k epochs of history (target: ≤ 1.2× apart),
#   - restart-to-serving time with that long history (target: < 1 s),
#   - governor.status latency p50/p99 at 1000 requests/s on loopback while the daemon ingests
#     (target: p99 < 5 ms).
#
#   scripts/bench-daemon.sh                     # the documented run (100k epochs, ~10–20 min)
#   BENCH_EPOCHS=5000 scripts/bench-daemon.sh   # a quick run with a shorter long history
#
# How. One simulated chain (healthy scenario, seed 1, 2-block epochs, chain id tb-sim; the
# simulator writes files of 1000 blocks = 500 epochs) feeds two `tb-governor run` daemons, each
# with its own watched chain directory and data dir; chain files are hard-linked in, whole.
#   short: starts on 1000 epochs and then idles.
#   long:  starts from genesis on BENCH_EPOCHS epochs. While it ingests them, the load generator
#          (governor/benches/rpc_load.rs) sends governor.status at BENCH_RATE req/s, open loop,
#          for BENCH_LOAD_SECS; then the same load once more with the daemon idle.
# Close cost: BENCH_REPS batches of 500 epochs per daemon, alternating short / long so both see
# the same machine (a shared machine's disk is the noisiest part): link one more file, time
# until status shows the batch's last decision, divide by 500; the best batch of each counts. A close covers reading and
# decoding 2 blocks (every receipt signature verified), the replay and gate decision, the
# decision file (temp file, fsync, link, directory fsync) and the checkpoint once per read
# batch; the wall figure also includes up to one poll interval (20 ms) before the file is seen.
# Restart: SIGTERM the long daemon, then BENCH_RESTARTS times spawn it and time spawn → first
# successful governor.status (then SIGTERM again).
#
# History (BENCH_HISTORY=1 after the above, or BENCH_HISTORY=only alone): what grows with the
# number of decisions on disk, at 1000, H/10 and H of them (H = BENCH_HISTORY_EPOCHS, 1M by
# default). One daemon with signing on ingests a chain of H two-block epochs from genesis (its own
# simulation, cached like the other), stopping at 1000 and H/10 epochs to copy its data dir
# (decision files and sidecars hard-linked: they are never rewritten) with a chain directory
# holding only the files it has read. On each of the three:
#   - restart to first successful governor.status, BENCH_RESTARTS times; then the same with the
#     checkpoint as an older version wrote it (no unsigned count), which makes the start list
#     decisions/ as every start used to (target: under 1 s at every size);
#   - tb-cli governor verify (every sidecar against the node's key) and tb-cli governor audit
#     (replay of the chain, every file compared): wall time and peak RSS (GNU time);
# and on the smallest and the largest, after writing one made-up intent every 10 epochs into the
# checkpoint (these chains never create one), governor.decisions and governor.intents p99 at
# BENCH_QUERY_RATE req/s, newest first and from epoch 500, BENCH_QUERY_REPS loads each,
# alternating between the two daemons; the best p99 of each counts (target: the largest within
# 1.5× of the smallest).
#
# Environment:
#   BENCH_EPOCHS=N       epochs of long history, a multiple of 500, at least 2000 (default 100000)
#   BENCH_REPS=N         batches of 500 epochs timed per daemon (default 7); the best batch of each
#                        is compared (interference only ever adds time), medians are shown too
#   BENCH_RATE=N         governor.status requests per second (default 1000)
#   BENCH_LOAD_SECS=N    load duration, after 1 s of warm-up (default 10)
#   BENCH_CONNS=N        keep-alive connections of the load generator (default 4)
#   BENCH_RESTARTS=N     restarts timed (default 5)
#   BENCH_DATA=DIR       where the simulated chain is cached (default target/bench-data)
#   BENCH_HISTORY=0|1|only  the history measurements: not at all (default), after the others,
#                        or alone
#   BENCH_HISTORY_EPOCHS=N  the largest history, a multiple of 5000, at least 20000 (default
#                        1000000: about 3.3 GB of chain, cached, and 12 GB of data dirs under the
#                        work directory while it runs; ingesting it takes 30–60 min)
#   BENCH_QUERY_RATE=N   requests per second of each query load (default 200)
#   BENCH_QUERY_SECS=N   seconds of each query load, after 1 s of warm-up (default 10)
#   BENCH_QUERY_REPS=N   loads per query and daemon, alternating; the best p99 of each counts
#                        (default 3)
#   BENCH_DOC=0|1        write the figures into docs/performance.md, "## Daemon" (default: for
#                        the full 100k run and for the 1M history, each its own block)
#   BENCH_KEEP=1         keep the work directory (target/bench-daemon.PID): logs, configs, the
#                        per-request latency series of both loads
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
root=$(pwd)

BENCH_EPOCHS=${BENCH_EPOCHS:-100000}
BENCH_REPS=${BENCH_REPS:-7}
BENCH_RATE=${BENCH_RATE:-1000}
BENCH_LOAD_SECS=${BENCH_LOAD_SECS:-10}
BENCH_CONNS=${BENCH_CONNS:-4}
BENCH_RESTARTS=${BENCH_RESTARTS:-5}
BENCH_DATA=${BENCH_DATA:-$root/target/bench-data}
case $BENCH_DATA in /*) ;; *) BENCH_DATA=$root/$BENCH_DATA ;; esac
BENCH_HISTORY=${BENCH_HISTORY:-0}
BENCH_HISTORY_EPOCHS=${BENCH_HISTORY_EPOCHS:-1000000}
BENCH_QUERY_RATE=${BENCH_QUERY_RATE:-200}
BENCH_QUERY_SECS=${BENCH_QUERY_SECS:-10}
BENCH_QUERY_REPS=${BENCH_QUERY_REPS:-3}
# BENCH_DOC, when set, decides for both parts; otherwise each writes its documented run.
doc_main=${BENCH_DOC:-$([[ $BENCH_EPOCHS == 100000 ]] && echo 1 || echo 0)}
doc_history=${BENCH_DOC:-$([[ $BENCH_HISTORY_EPOCHS == 1000000 ]] && echo 1 || echo 0)}
BENCH_KEEP=${BENCH_KEEP:-0}

FILE_EPOCHS=500 # the simulator writes 1000-block files: 500 two-block epochs each
SHORT=1000      # epochs of history of the short daemon
LONG=$BENCH_EPOCHS
if ((LONG % FILE_EPOCHS != 0 || LONG < 2 * SHORT || BENCH_REPS < 1)); then
    echo "BENCH_EPOCHS=$LONG must be a multiple of $FILE_EPOCHS and at least $((2 * SHORT));" \
        "BENCH_REPS at least 1" >&2
    exit 2
fi
TOTAL=$((LONG + BENCH_REPS * FILE_EPOCHS))
H=$BENCH_HISTORY_EPOCHS
if [[ ! $BENCH_HISTORY =~ ^(0|1|only)$ ]] || ((H % 5000 != 0 || H < 20000)); then
    echo "BENCH_HISTORY must be 0, 1 or only; BENCH_HISTORY_EPOCHS=$H a multiple of 5000," \
        "at least 20000" >&2
    exit 2
fi

work=$root/target/bench-daemon.$$
declare -A PID URL
cleanup() {
    local rc=$? d
    for d in "${!PID[@]}"; do
        kill -TERM "${PID[$d]}" 2>/dev/null || true
        wait "${PID[$d]}" 2>/dev/null || true
    done
    if [[ -f $work/restart.pid ]]; then
        kill -TERM "$(cat "$work/restart.pid")" 2>/dev/null || true
    fi
    if [[ $BENCH_KEEP == 1 || $rc != 0 ]]; then
        echo "work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# jget KEY JSON: a top-level number (or null) of the one-line JSON rpc_load prints.
jget() { sed -n "s/.*\"$1\":\([-0-9.a-z]*\).*/\1/p" <<<"$2"; }
# ms MICROS: milliseconds with 2 decimals.
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
# median N…: the middle value (the lower middle for an even count).
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# rat A B: B / A with 2 decimals.
rat() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }
# verdict X T le|lt: PASS when X ≤ T (le) or X < T (lt).
verdict() { awk -v x="$1" -v t="$2" -v op="$3" 'BEGIN {
    ok = (op == "le" ? x <= t : x < t); print (ok ? "PASS" : "FAIL") }'; }
# hist N: 1000 → 1k, 1000000 → 1M.
hist() {
    if (($1 % 1000000 == 0)); then echo "$(($1 / 1000000))M"
    elif (($1 % 1000 == 0)); then echo "$(($1 / 1000))k"
    else echo "$1"; fi
}

echo "== machine"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores visible)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "cpu: $cpu"
echo "rustc: $(rustc --version)"
echo "load average: $load_start"

echo "== build (release)"
# Building the benchmark (release settings) builds the package's binaries too; cargo's JSON
# messages name each executable.
artifacts=$(cargo bench -p tb-governor --bench rpc_load --no-run --message-format=json)
exe() {
    grep "\"name\":\"$1\"" <<<"$artifacts" | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -1 || true
}
gov_exe=$(exe tb-governor)
cli_exe=$(exe tb-cli)
load_exe=$(exe rpc_load)
[[ -x $gov_exe && -x $cli_exe && -x $load_exe ]] || { echo "could not find the tb-governor, tb-cli and rpc_load executables" >&2; exit 1; }
mkdir -p "$work/bin"
# Private copies: a concurrent cargo build must not swap the binaries mid-run.
cp "$gov_exe" "$work/bin/tb-governor"
cp "$cli_exe" "$work/bin/tb-cli"
cp "$load_exe" "$work/bin/rpc_load"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
git diff --quiet HEAD -- governor/src replay/src decisions/src config/src 2>/dev/null ||
    commit+=" + uncommitted changes"
gov=$work/bin/tb-governor
cli=$work/bin/tb-cli
rpc=$work/bin/rpc_load

# simulate N: sets sim to a simulated chain of N two-block epochs (made once, then cached).
simulate() {
    sim=$BENCH_DATA/daemon-healthy-s1-e$1-b2
    if [[ ! -f $sim/.complete ]]; then
        echo "== simulating $1 two-block epochs into $sim"
        rm -rf "$sim" "$sim.tmp"
        mkdir -p "$BENCH_DATA"
        local start=$SECONDS
        "$gov" simulate --out "$sim.tmp" --epochs "$1" --epoch-blocks 2 --seed 1 \
            --scenario healthy --chain-id tb-sim >/dev/null
        touch "$sim.tmp/.complete"
        mv "$sim.tmp" "$sim"
        echo "simulated in $((SECONDS - start)) s"
    fi
}
# file I: the chain file holding epochs [500·I, 500·I + 499].
file() { printf '%s/chain/blocks-%06d.jsonl' "$sim" "$1"; }
# link D I…: hard-link chain files into daemon D's chain directory (copy across file systems).
link() {
    local d=$1 i
    shift
    mkdir -p "$work/$d/chain"
    for i in "$@"; do ln "$(file "$i")" "$work/$d/chain/" 2>/dev/null || cp "$(file "$i")" "$work/$d/chain/"; done
}

# write_config D [TOML]: D's config (data and chain directories under $work/D), TOML appended.
write_config() {
    mkdir -p "$work/$1/chain"
    cat >"$work/$1/governor.toml" <<EOF
[governor]
data_dir = "$work/$1/data"
chain_id = "tb-sim"
epoch_blocks = 2

[chain]
dir = "$work/$1/chain"
providers = "$sim/providers.json"
poll_ms = 20

[rpc]
listen = "127.0.0.1:0"
rps = 100000
${2:-}
EOF
}
# start D [TOML]: writes D's config and starts it; sets PID[D] and URL[D].
start() {
    local d=$1 i
    write_config "$d" "${2:-}"
    : >"$work/$d/daemon.out"
    "$gov" run --config "$work/$d/governor.toml" >"$work/$d/daemon.out" 2>>"$work/$d/daemon.log" &
    PID[$d]=$!
    for ((i = 0; i < 6000; i++)); do
        URL[$d]=$(sed -n 's/^listening on //p' "$work/$d/daemon.out")
        if [[ -n ${URL[$d]} ]]; then
            echo "  $d daemon at ${URL[$d]} (pid ${PID[$d]})"
            return 0
        fi
        kill -0 "${PID[$d]}" 2>/dev/null || { cat "$work/$d/daemon.log" >&2; exit 1; }
        sleep 0.01
    done
    echo "the $d daemon did not listen within 60 s" >&2
    exit 1
}
stop() {
    kill -TERM "${PID[$1]}"
    wait "${PID[$1]}" || true
    unset "PID[$1]"
}
# peek D: the newest epoch D's status shows a decision for.
peek() {
    local r
    r=$("$rpc" wait --url "${URL[$1]}" --epoch 0)
    jget epoch "$r"
}
# decision_mtime D EPOCH: mtime of that decision file, seconds with ns.
decision_mtime() { stat -c %.9Y "$work/$1/data/decisions/epoch-$(printf %020d "$2").json"; }
# batch D FILE: links one more file into D, times until its last epoch is decided; prints
# the per-epoch µs "WALL FILES" (FILES: first to last decision file mtime of the batch).
batch() {
    local d=$1 f=$2 res
    res=$("$rpc" close-time --url "${URL[$d]}" --into "$work/$d/chain" --link "$(file "$f")" \
        --until-epoch $(((f + 1) * FILE_EPOCHS - 1)) --decisions "$work/$d/data/decisions")
    echo "  $d: $res" >&2
    echo "$(jget per_epoch_us_wall "$res") $(jget per_epoch_us_files "$res")"
}

# write_doc BEGIN END TABLE CONTEXT: puts TABLE and CONTEXT between the marker lines BEGIN and END
# of docs/performance.md, "## Daemon" (at the end of that section the first time).
write_doc() {
    local doc=$root/docs/performance.md begin=$1 end=$2 block=$work/block.md
    {
        echo "$begin"
        echo
        echo "$3"
        echo
        echo "$4"
        echo
        echo "$end"
    } >"$block"
    mkdir -p "$root/docs"
    if [[ ! -f $doc ]] || ! grep -q '^## Daemon' "$doc"; then
        # No section yet: append one at the end, touching nothing else.
        {
            if [[ -s $doc ]]; then echo; fi
            echo "## Daemon"
            echo
            echo "Measured by \`scripts/bench-daemon.sh\`."
            echo
            cat "$block"
        } >>"$doc"
    elif grep -qF "$begin" "$doc"; then
        awk -v b="$begin" -v e="$end" -v f="$block" '
            $0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
            skip && $0 == e { skip = 0; next }
            !skip { print }' "$doc" >"$doc.tmp.$$"
        mv "$doc.tmp.$$" "$doc"
    else
        # A section without these figures yet: put them at its end.
        awk -v f="$block" '
            function put() {
                if (last != "") print ""
                while ((getline l < f) > 0) print l
                print ""
                done = 1
            }
            /^## / && daemon && !done { put() }
            /^## Daemon/ { daemon = 1 }
            { print; last = $0 }
            END { if (daemon && !done) put() }' "$doc" >"$doc.tmp.$$"
        mv "$doc.tmp.$$" "$doc"
    fi
    echo
    echo "figures written to docs/performance.md (## Daemon)"
}

# ---- history: what grows with the number of decisions on disk ----

# snapshot S T [TOML]: a stopped daemon S's data dir copied to T (decision files and sidecars
# hard-linked: never rewritten; the small files copied), with a chain directory holding the chain
# files S has (all read), and T's config.
snapshot() {
    local s=$work/$1 t=$work/$2
    mkdir -p "$t/data" "$t/chain"
    cp -al "$s/data/decisions" "$t/data/"
    cp -a "$s/data/journal.jsonl" "$s/data/state" "$s/data/runtime" "$s/data/LOCK" "$t/data/"
    ln "$s/chain/"*.jsonl "$t/chain/"
    write_config "$2" "${3:-}"
}
# timed OUT CMD…: runs CMD (stdout to OUT) under GNU time; prints "WALL_S MAXRSS_KIB EXIT".
timed() {
    local out=$1 rc=0
    shift
    /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >"$out" 2>>"$work/timed.log" || rc=$?
    echo "$(cat "$work/time.txt" | tail -1) $rc"
}
# restarts D: rpc_load restart of D, BENCH_RESTARTS times.
restarts() {
    "$rpc" restart --runs "$BENCH_RESTARTS" --pidfile "$work/restart.pid" \
        --log "$work/$1/daemon.log" -- "$gov" run --config "$work/$1/governor.toml"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

history_part() {
    local sizes=(1000 $((H / 10)) "$H") n d prev=0 t0 r
    local -A dir ingest rss cpb new old verify audit q
    simulate "$H"
    "$gov" keygen --out "$work/node.key" >"$work/keygen.txt"
    local pk
    pk=$(sed -n 's/^public key: *//p' "$work/keygen.txt")
    local signing
    signing=$(printf '[signing]\nenabled = true\nkey_file = "%s"' "$work/node.key")

    echo "== history: one signing daemon ingests $H epochs, copied at ${sizes[0]} and ${sizes[1]}"
    for n in "${sizes[@]}"; do
        link grow $(seq $((prev / FILE_EPOCHS)) $((n / FILE_EPOCHS - 1)))
        start grow "$signing"
        t0=$SECONDS
        "$rpc" wait --url "${URL[grow]}" --epoch $((n - 1)) --timeout-secs 86400 >/dev/null
        rss[$n]=$(awk '/^VmHWM/ { print $2 }' "/proc/${PID[grow]}/status")
        stop grow
        ingest[$n]=$(awk -v n=$((n - prev)) -v s=$((SECONDS - t0)) 'BEGIN { printf "%.0f", n / (s > 0 ? s : 1) }')
        cpb[$n]=$(stat -c %s "$work/grow/data/state/checkpoint.json")
        echo "  $(hist "$n"): epochs $prev → $((n - 1)) at ${ingest[$n]} epochs/s, daemon peak RSS $(mib "${rss[$n]}") MiB, checkpoint ${cpb[$n]} bytes"
        if ((n == H)); then dir[$n]=grow; else dir[$n]=h$n; snapshot grow "h$n" "$signing"; fi
        prev=$n
    done

    echo "== history: restarts, verify and audit"
    for n in "${sizes[@]}"; do
        d=${dir[$n]}
        new[$n]=$(restarts "$d")
        # The checkpoint as an older version wrote it: the start lists decisions/, as every start
        # did before the checkpoint counted the unsigned decisions.
        local cp=$work/$d/data/state/checkpoint.json
        cp "$cp" "$cp.bench"
        sed -i 's/,"unsigned":[0-9]*,"keyid":\(null\|"[0-9a-f]*"\)}$/}/' "$cp"
        if grep -q '"unsigned"' "$cp"; then echo "could not strip the unsigned count from $cp" >&2; exit 1; fi
        old[$n]=$(restarts "$d")
        mv "$cp.bench" "$cp"
        verify[$n]=$(timed /dev/null "$cli" governor verify --decisions "$work/$d/data/decisions" --trusted-key "$pk")
        audit[$n]=$(timed /dev/null "$cli" governor audit --config "$work/$d/governor.toml" \
            --journal "$work/$d/data/journal.jsonl" --decisions "$work/$d/data/decisions")
        for r in "${verify[$n]}" "${audit[$n]}"; do
            [[ ${r##* } == 0 ]] || { echo "verify or audit of $(hist "$n") failed (exit ${r##* }); see $work/timed.log" >&2; exit 1; }
        done
        echo "  $(hist "$n"): restart $(ms "$(jget serve_us_median "${new[$n]}")") ms (older checkpoint: $(ms "$(jget serve_us_median "${old[$n]}")") ms), verify ${verify[$n]% *} (s KiB), audit ${audit[$n]% *} (s KiB)"
    done

    local small=${sizes[0]} big=$H
    echo "== history: queries at $(hist "$small") and $(hist "$big") decisions, $BENCH_QUERY_RATE req/s"
    for n in "$small" "$big"; do
        "$rpc" synth-intents --checkpoint "$work/${dir[$n]}/data/state/checkpoint.json" --every 10 >"$work/intents-$n.json"
        start "${dir[$n]}" "$signing"
    done
    local queries=(
        'governor.decisions {"limit":20}'
        'governor.decisions {"from_epoch":500,"limit":20}'
        'governor.intents {"limit":20}'
        'governor.intents {"before_epoch":500,"limit":20}'
    )
    local i k p method params
    local -A p99s
    for i in "${!queries[@]}"; do
        read -r method params <<<"${queries[$i]}"
        for ((k = 0; k < BENCH_QUERY_REPS; k++)); do
            for n in "$small" "$big"; do
                r=$("$rpc" load --url "${URL[${dir[$n]}]}" --rate "$BENCH_QUERY_RATE" \
                    --secs "$BENCH_QUERY_SECS" --conns 2 --method "$method" --params "$params")
                [[ $(jget errors "$r") == 0 ]] || { echo "$method $params: $r" >&2; exit 1; }
                p=$(jget p99_us "$r")
                p99s[$i,$n]+="${p99s[$i,$n]:+;}$p"
                # The best load of each counts: interference only ever adds time.
                if [[ -z ${q[$i,$n]:-} ]] || ((p < $(jget p99_us "${q[$i,$n]}"))); then q[$i,$n]=$r; fi
            done
        done
        echo "  $method $params: p99 µs, loads in turn: $(hist "$small") [${p99s[$i,$small]}], $(hist "$big") [${p99s[$i,$big]}]"
    done
    for n in "$small" "$big"; do stop "${dir[$n]}"; done

    # ---- history results ----
    local table context v_restart=PASS worst=0
    for n in "${sizes[@]}"; do
        worst=$(( $(jget serve_us_max "${new[$n]}") > worst ? $(jget serve_us_max "${new[$n]}") : worst ))
    done
    v_restart=$(verdict "$worst" 1000000 lt)
    table=$(
        printf '| decisions on disk | restart to first `governor.status` (median of %s; max) | the same, checkpoint of an older version (lists `decisions/`) | `tb-cli governor verify`: wall, peak RSS | `tb-cli governor audit`: wall, peak RSS |\n' "$BENCH_RESTARTS"
        printf '| ---: | ---: | ---: | ---: | ---: |\n'
        for n in "${sizes[@]}"; do
            read -r vw vr _ <<<"${verify[$n]}"
            read -r aw ar _ <<<"${audit[$n]}"
            printf '| %s | %s ms (max %s ms) | %s ms (max %s ms) | %s s, %s MiB | %s s, %s MiB |\n' "$n" \
                "$(ms "$(jget serve_us_median "${new[$n]}")")" "$(ms "$(jget serve_us_max "${new[$n]}")")" \
                "$(ms "$(jget serve_us_median "${old[$n]}")")" "$(ms "$(jget serve_us_max "${old[$n]}")")" \
                "$vw" "$(mib "$vr")" "$aw" "$(mib "$ar")"
        done
        echo
        printf '| measurement | %s | %s | ratio | target | result |\n' "$(hist "$small")" "$(hist "$big")"
        printf '| --- | ---: | ---: | ---: | --- | --- |\n'
        printf '| restart to first `governor.status`, slowest of every run at every size | | %s ms | | < 1 s | %s |\n' "$(ms "$worst")" "$v_restart"
        for i in "${!queries[@]}"; do
            read -r method params <<<"${queries[$i]}"
            local a b
            a=$(jget p99_us "${q[$i,$small]}")
            b=$(jget p99_us "${q[$i,$big]}")
            printf '| `%s` `%s` p99 at %s req/s (best of %s loads) | %s ms | %s ms | %s× | ≤ 1.5× | %s |\n' "$method" "$params" \
                "$BENCH_QUERY_RATE" "$BENCH_QUERY_REPS" "$(ms "$a")" "$(ms "$b")" "$(rat "$a" "$b")" "$(verdict "$(rat "$a" "$b")" 1.5 le)"
        done
    )
    context=$(
        for n in "${sizes[@]}"; do
            echo "- $(hist "$n"): ingest from $( ((n == small)) && echo genesis || echo "the previous size") with signing on at ${ingest[$n]} epochs/s, the daemon's peak RSS $(mib "${rss[$n]}") MiB, checkpoint ${cpb[$n]} bytes; restart spawn → \`listening on\` $(ms "$(jget listen_us_median "${new[$n]}")") ms (older checkpoint $(ms "$(jget listen_us_median "${old[$n]}")") ms)"
        done
        echo "- queries: $BENCH_QUERY_SECS s after 1 s of warm-up per load, 2 keep-alive connections, the two daemons idle and loaded in turn; made-up intents: $(jget intents "$(cat "$work/intents-$small.json")") and $(jget intents "$(cat "$work/intents-$big.json")") (checkpoints of $(jget checkpoint_bytes "$(cat "$work/intents-$small.json")") and $(jget checkpoint_bytes "$(cat "$work/intents-$big.json")") bytes)"
        for i in "${!queries[@]}"; do
            read -r method params <<<"${queries[$i]}"
            echo "- \`$method\` \`$params\`, best load: p50 $(ms "$(jget p50_us "${q[$i,$small]}")") / $(ms "$(jget p50_us "${q[$i,$big]}")") ms, max $(ms "$(jget max_us "${q[$i,$small]}")") / $(ms "$(jget max_us "${q[$i,$big]}")") ms; p99 of every load in run order (µs): $(hist "$small") [${p99s[$i,$small]}], $(hist "$big") [${p99s[$i,$big]}]"
        done
        echo "- decisions/ at $(hist "$H"): $(du -sh "$work/grow/data/decisions" | cut -f1); page cache warm throughout"
        echo "- machine: $cpu; load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; commit $commit; $(date -u +%Y-%m-%d)"
    )
    echo
    echo "$table"
    echo
    echo "$context"
    if [[ $doc_history == 1 ]]; then
        write_doc '<!-- scripts/bench-daemon.sh writes the history figures between these markers -->' \
            '<!-- end of scripts/bench-daemon.sh history figures -->' "$table" "$context"
    fi
}

if [[ $BENCH_HISTORY == only ]]; then
    history_part
    exit 0
fi

simulate "$TOTAL"
echo "== short daemon: $SHORT epochs of history"
link short $(seq 0 $((SHORT / FILE_EPOCHS - 1)))
start short
"$rpc" wait --url "${URL[short]}" --epoch $((SHORT - 1)) --timeout-secs 600 >/dev/null

echo "== long daemon: ingest $LONG epochs from genesis, governor.status load meanwhile"
link long $(seq 0 $((LONG / FILE_EPOCHS - 1)))
start long
sleep 0.5
e0=$(peek long)
t0=$(date +%s.%N)
busy=$("$rpc" load --url "${URL[long]}" --rate "$BENCH_RATE" --secs "$BENCH_LOAD_SECS" \
    --conns "$BENCH_CONNS" --series "$work/load-ingesting.txt")
e1=$(peek long)
t1=$(date +%s.%N)
echo "  load while ingesting: $busy"
ingest_rate=$(awk -v a="$e0" -v b="$e1" -v s="$t0" -v t="$t1" 'BEGIN { printf "%.0f", (b - a) / (t - s) }')
echo "  ingest during the load: epochs $e0 → $e1 ($ingest_rate epochs/s)"
busy_note=
if ((e0 >= LONG - 1)); then
    busy_note=" (the ingest had finished before the load began: raise BENCH_EPOCHS)"
    echo "  warning: the ingest had finished before the load began" >&2
elif ((e1 >= LONG - 1)); then
    busy_note=" (the ingest finished before the load did: partly idle)"
    echo "  warning: the ingest finished during the load window" >&2
fi
"$rpc" wait --url "${URL[long]}" --epoch $((LONG - 1)) --timeout-secs 7200 >/dev/null
# Close to close from the decision files: neither the load nor the polling counts.
bulk_rate=$(awk -v n=$((LONG - 2)) -v s="$(decision_mtime long 1)" -v t="$(decision_mtime long $((LONG - 1)))" \
    'BEGIN { printf "%.0f", n / (t - s) }')
echo "  ingest of epochs 1 → $((LONG - 1)): $bulk_rate epochs/s"
idle=$("$rpc" load --url "${URL[long]}" --rate "$BENCH_RATE" --secs "$BENCH_LOAD_SECS" \
    --conns "$BENCH_CONNS" --series "$work/load-idle.txt")
echo "  load while idle: $idle"

echo "== decision-file write floor (RecordStore::write: temp file, fsync, link, directory fsync)"
floor=$("$rpc" fsync-probe --dir "$work/probe" --n 300 --prefill "$LONG")
echo "  $floor"

echo "== close cost: $BENCH_REPS batches of $FILE_EPOCHS epochs per daemon, alternating"
A=() B=()
for ((r = 0; r < BENCH_REPS; r++)); do
    A+=("$(batch short $((SHORT / FILE_EPOCHS + r)))")
    B+=("$(batch long $((LONG / FILE_EPOCHS + r)))")
done
stop short

echo "== restart with $TOTAL decisions on disk"
stop long
restart=$("$rpc" restart --runs "$BENCH_RESTARTS" --pidfile "$work/restart.pid" \
    --log "$work/long/daemon.log" -- "$gov" run --config "$work/long/governor.toml")
echo "  $restart"

# ---- results ----
col() {
    local i=$1 l f
    shift
    for l in "$@"; do
        read -ra f <<<"$l"
        echo "${f[$i]}"
    done
}
# Best batch per daemon for the verdict (what interference did not inflate; the batches
# alternate, so both had the same chances), medians alongside.
best() { printf '%s\n' "$@" | sort -n | head -1; }
a_best=$(best $(col 0 "${A[@]}"))
b_best=$(best $(col 0 "${B[@]}"))
a_med=$(median $(col 0 "${A[@]}"))
b_med=$(median $(col 0 "${B[@]}"))
a_files=$(best $(col 1 "${A[@]}"))
b_files=$(best $(col 1 "${B[@]}"))
ratio=$(rat "$a_best" "$b_best")
serve_med=$(jget serve_us_median "$restart")
serve_max=$(jget serve_us_max "$restart")
p50=$(jget p50_us "$busy")
p99=$(jget p99_us "$busy")
v_ratio=$(verdict "$ratio" 1.2 le)
v_restart=$(verdict "$serve_max" 1000000 lt)
v_p99=$(verdict "$p99" 5000 lt)
if ((e0 >= LONG - 1)); then v_p99="n/a"; fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
reps="best of $BENCH_REPS batches of $FILE_EPOCHS epochs"

table=$(
    printf '| measurement | figure | target | result |\n'
    printf '| --- | ---: | --- | --- |\n'
    printf '| per-epoch close cost, %s epochs of history (%s) | %s ms | | |\n' "$(hist $SHORT)" "$reps" "$(ms "$a_best")"
    printf '| per-epoch close cost, %s epochs of history (%s) | %s ms | | |\n' "$(hist "$LONG")" "$reps" "$(ms "$b_best")"
    printf '| close cost, %s / %s | %s× | ≤ 1.2× | %s |\n' "$(hist "$LONG")" "$(hist $SHORT)" "$ratio" "$v_ratio"
    printf '| restart to first successful `governor.status`, %s decisions on disk (median of %s; max) | %s ms (max %s ms) | < 1 s | %s |\n' \
        "$TOTAL" "$BENCH_RESTARTS" "$(ms "$serve_med")" "$(ms "$serve_max")" "$v_restart"
    printf '| `governor.status` p50 at %s req/s while ingesting%s | %s ms | | |\n' "$BENCH_RATE" "$busy_note" "$(ms "$p50")"
    printf '| `governor.status` p99 at %s req/s while ingesting%s | %s ms | < 5 ms | %s |\n' "$BENCH_RATE" "$busy_note" "$(ms "$p99")" "$v_p99"
)
batches_us() { local IFS=';'; echo "$*"; }
context=$(
    echo "- close cost, median batch: $(ms "$a_med") ms at $(hist $SHORT), $(ms "$b_med") ms at $(hist "$LONG") ($(rat "$a_med" "$b_med")×); best batch close to close (first to last decision file of the batch, by mtime): $(ms "$a_files") ms and $(ms "$b_files") ms ($(rat "$a_files" "$b_files")×). Every batch in run order, µs per epoch as \"wall files\": $(hist $SHORT) [$(batches_us "${A[@]}")], $(hist "$LONG") [$(batches_us "${B[@]}")]"
    big=$(sed 's/.*"big":{\([^}]*\)}.*/\1/' <<<"$floor")
    echo "- decision-file write floor (\`RecordStore::write\`: temp file, fsync, link, directory fsync), just before the batches, alternating between an empty directory and one holding $LONG entries: mean $(ms "$(jget mean_us "$floor")") / $(ms "$(jget mean_us "$big")") ms, p50 $(ms "$(jget p50_us "$floor")") / $(ms "$(jget p50_us "$big")") ms, p90 $(ms "$(jget p90_us "$floor")") / $(ms "$(jget p90_us "$big")") ms"
    echo "- \`governor.status\` while ingesting: p90 $(ms "$(jget p90_us "$busy")") ms, p99.9 $(ms "$(jget p999_us "$busy")") ms, max $(ms "$(jget max_us "$busy")") ms; $(jget ok "$busy") ok, $(jget errors "$busy") errors, $(jget late_sends "$busy") requests sent more than 1 ms after their due time (their connection was still waiting); $BENCH_CONNS keep-alive connections, ${BENCH_LOAD_SECS} s after 1 s of warm-up; the daemon closed $ingest_rate epochs/s meanwhile"
    echo "- \`governor.status\`, same load, daemon idle: p50 $(ms "$(jget p50_us "$idle")") ms, p99 $(ms "$(jget p99_us "$idle")") ms, max $(ms "$(jget max_us "$idle")") ms, $(jget errors "$idle") errors"
    echo "- ingest from genesis to epoch $((LONG - 1)) (the load above ran during ${BENCH_LOAD_SECS} s of it): $bulk_rate epochs/s"
    echo "- restart: spawn → \`listening on\` $(ms "$(jget listen_us_median "$restart")") ms, SIGTERM → exit $(ms "$(jget stop_us_median "$restart")") ms (medians); page cache warm"
    echo "- machine: $cpu; load average $load_start at the start, $load_end at the end; commit $commit; $(date -u +%Y-%m-%d)"
)

echo
echo "$table"
echo
echo "$context"

if [[ $doc_main == 1 ]]; then
    write_doc '<!-- scripts/bench-daemon.sh writes the figures between these markers -->' \
        '<!-- end of scripts/bench-daemon.sh figures -->' "$table" "$context"
fi
if [[ $BENCH_HISTORY == 1 ]]; then
    history_part
fi
