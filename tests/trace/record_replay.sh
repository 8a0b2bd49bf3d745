#!/bin/sh
# Recording end to end: wave-agentd with "record" configured but off, turned
# on and off again by SIGUSR2, serving the taskpool example (a real sched
# host); then wave-replay on the trace it wrote:
#  - only the host served while recording has a trace;
#  - replayed into the plugin it was recorded with, every event gets
#    exactly the decisions that were recorded;
#  - two replays into another policy write byte-identical decisions;
#  - the Chrome/Perfetto export is JSON with a track per CPU.
# usage: record_replay.sh <wave-agentd> <wave-example-taskpool> <wave-replay> <plugin dir>
set -u
agentd=$1 taskpool=$2 replay=$3 plugins=$4
unset WAVE_LOG
dir=$(mktemp -d /tmp/wave-record-XXXXXX) || exit 1
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- daemon log"; cat "$dir/log" 2>/dev/null; exit 1; }

mkdir "$dir/traces"
cat > "$dir/agent.json" <<EOF
{ "listen": ["shm://$dir/agent.sock"], "plugin_path": ["$plugins"],
  "heartbeat": { "timeout_ms": 10000 },
  "domains": { "sched": { "plugin": "sched_shinjuku", "params": { "slice_us": 100 } } },
  "record": { "path": "$dir/traces", "enabled": false } }
EOF

# Waits (up to a minute: a loaded machine is slow, never wrong) for a line
# of the log holding $1, $2 times.
wait_log() {
	i=0
	while n=$(grep -c -- "$1" "$dir/log" 2>/dev/null); [ "${n:-0}" -lt "$2" ]; do
		kill -0 "$pid" 2>/dev/null || fail "daemon died waiting for '$1'"
		i=$((i + 1)); [ $i -lt 1200 ] || fail "no '$1' in the log"
		sleep 0.05
	done
}
pool() {
	timeout 120 "$taskpool" --agent "shm://$dir/agent.sock" --workers 2 --tasks 6 \
		--slices 10 --spin-us 100 --tick-us 50 --quiet > "$dir/pool.out" 2>&1 ||
		fail "taskpool: $(cat "$dir/pool.out")"
}

"$agentd" --config "$dir/agent.json" > "$dir/log" 2>&1 &
pid=$!
wait_log "serving" 1
kill -USR2 "$pid"
wait_log "recording on" 1
pool
kill -USR2 "$pid"
wait_log "recording off" 1
pool # host 2: not recorded
kill -TERM "$pid"
wait "$pid"
pid=

n=$(ls "$dir/traces" | wc -l)
[ "$n" -eq 1 ] || fail "$n traces, expected one: $(ls "$dir/traces")"
trace=$(ls "$dir/traces"/*-host1-sched.trace) || fail "no trace of host 1"

out=$("$replay" --plugin-dir "$plugins" "$trace" sched_shinjuku) || fail "replay: $out"
echo "$out"
echo "$out" | grep -q " 0 of [1-9][0-9]* events decided differently" ||
	fail "the recorded plugin replayed differently"
echo "$out" | grep -Eq "decisions: ([1-9][0-9]*) recorded, \1 replayed" ||
	fail "decision counts differ"

"$replay" --plugin-dir "$plugins" --no-quality --decisions "$dir/a.trace" "$trace" sched_fifo \
	> /dev/null || fail "replay into sched_fifo"
"$replay" --plugin-dir "$plugins" --no-quality --decisions "$dir/b.trace" "$trace" sched_fifo \
	> /dev/null || fail "second replay into sched_fifo"
[ -s "$dir/a.trace" ] || fail "no decisions written"
cmp "$dir/a.trace" "$dir/b.trace" || fail "two replays wrote different decisions"

"$replay" --no-quality --chrome "$dir/t.json" "$trace" > /dev/null || fail "chrome export"
python3 - "$dir/t.json" <<'EOF' || fail "chrome export is not the expected JSON"
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
assert {e["args"]["name"] for e in ev if e.get("name") == "thread_name"} == {"cpu 0", "cpu 1"}
assert any(e["ph"] == "X" for e in ev) and any(e["ph"] == "i" for e in ev)
EOF

# Parameters that are not an object: one error, no crash (the plugin was
# once unloaded twice, a use after free).
out=$("$replay" --plugin-dir "$plugins" --params '[]' "$trace" sched_fifo 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "bad --params: exit $rc: $out"
echo "$out" | grep -q "expected an object" || fail "bad --params: $out"
# Bad usage says why (exit 2); no output overwrites the trace; a write that
# fails (a full disk) fails the run (exit 1), saying where.
expect() { # STATUS TEXT ARGS...
	want=$1 text=$2
	shift 2
	out=$("$replay" "$@" 2>&1 > /dev/full)
	rc=$?
	[ $rc -eq "$want" ] || fail "wave-replay $*: exit $rc, not $want: $out"
	echo "$out" | grep -qF "$text" || fail "wave-replay $*: no '$text' in: $out"
}
expect 2 "expected an integer from 1 to 1000000, got '4294967297'" --repeat 4294967297 "$trace"
expect 2 "would overwrite the trace" --decisions "$trace" "$trace" sched_fifo
expect 2 "name one file" --jsonl "$dir/x" --chrome "$dir/x" "$trace"
expect 1 "standard output: No space left on device" --no-quality "$trace"
expect 1 "/dev/full: No space left on device" --no-quality --jsonl /dev/full "$trace"

# --jsonl -: standard output holds the JSON lines alone (a pipe into jq);
# the report goes to standard error.
"$replay" --jsonl - "$trace" 2>/dev/null |
	python3 -c 'import json, sys; n = sum(1 for l in sys.stdin if json.loads(l)); assert n > 0' ||
	fail "--jsonl - mixed something else into the JSON lines"

# What an agent killed before its first block leaves: the header alone,
# without the host's setup. It is an empty trace, not a broken one: every
# mode says so and exits 0, and the Chrome export is still JSON.
hlen=$(od -An -t u4 -j 12 -N 4 "$trace" | tr -d ' ')
head -c "$hlen" "$trace" > "$dir/empty.trace"
out=$("$replay" "$dir/empty.trace" 2>&1) || fail "header-only trace: $out"
echo "$out" | grep -q "holds no records" || fail "header-only trace: $out"
out=$("$replay" --plugin-dir "$plugins" "$dir/empty.trace" sched_fifo 2>&1) ||
	fail "header-only trace into sched_fifo: $out"
out=$("$replay" --no-quality --chrome "$dir/empty.json" --jsonl "$dir/empty.jsonl" \
	"$dir/empty.trace" 2>&1) || fail "header-only trace, exports: $out"
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$dir/empty.json" ||
	fail "header-only trace: the Chrome export is not JSON"
echo "ok"
