#!/bin/sh
# Records the traces check_replay replays (tests/trace/traces/*.trace):
# wave-agentd serving the taskpool example with a sched policy, recording.
# Not run by the tests (a recording depends on the machine's timing). The
# stored ones are of format 2 on purpose (docs/trace.md says why); run it
# by hand to record new workloads, then update traces/expected.inc from
# wave-replay's quality figures:
#   sh tests/trace/record_traces.sh build/release tests/trace/traces
set -eu
build=$1 out=$2
dir=$(mktemp -d /tmp/wave-traces-XXXXXX)
trap 'rm -rf "$dir"' EXIT

record() { # record <name> <plugin> <params> <taskpool options...>
	name=$1 plugin=$2 params=$3
	shift 3
	mkdir "$dir/$name"
	cat > "$dir/agent.json" <<EOF
{ "listen": ["shm://$dir/agent.sock"], "plugin_path": ["$build/plugins"],
  "domains": { "sched": { "plugin": "$plugin", "params": $params } },
  "record": { "path": "$dir/$name" } }
EOF
	"$build/tools/wave-agentd" --config "$dir/agent.json" 2> "$dir/log" &
	pid=$!
	sleep 0.5
	"$build/examples/wave-example-taskpool" --agent "shm://$dir/agent.sock" --quiet "$@"
	kill -TERM "$pid"
	wait "$pid"
	cp "$dir/$name"/*.trace "$out/$name.trace"
}

mkdir -p "$out"
record fifo_2cpu sched_fifo '{}' --workers 2 --tasks 12 --slices 6 --spin-us 150
record shinjuku_2cpu sched_shinjuku '{"slice_us": 100}' --workers 2 --tasks 8 --slices 12 \
	--spin-us 120 --tick-us 50
ls -l "$out"
