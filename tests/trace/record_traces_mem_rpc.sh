#!/bin/sh
# Records the mem and rpc traces check_replay_models replays
# (tests/trace/traces/mem_*.trace, rpc_*.trace): wave-agentd, recording,
# serving the kvcache example (a real mem host: a far tier, the agent's
# victims) and the rpcserver example (a real rpc host: eBPF steering, as
# root) driven by sockperf clients, one flow each, at different rates.
# Not run by the tests (a recording depends on the machine's timing); run
# it by hand after a change of the trace format or of the examples, then
# regenerate the expected figures (update_expected.sh):
#   sh tests/trace/record_traces_mem_rpc.sh build/release tests/trace/traces
#   sh tests/trace/update_expected.sh build/release tests/trace/traces
set -eu
build=$(realpath "$1") out=$2
dir=$(mktemp -d /tmp/wave-traces-XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

agent() { # agent <name> <domain> <plugin> <params>
	mkdir "$dir/$1"
	cat > "$dir/agent.json" <<EOT
{ "listen": ["shm://$dir/agent.sock"], "plugin_path": ["$build/plugins"],
  "domains": { "$2": { "plugin": "$3", "params": $4 } },
  "record": { "path": "$dir/$1" } }
EOT
	"$build/tools/wave-agentd" --config "$dir/agent.json" 2> "$dir/log" &
	pid=$!
	sleep 0.5
}

done_agent() { # done_agent <name>
	kill -TERM "$pid"
	wait "$pid" || true
	pid=
	cp "$dir/$1"/*.trace "$out/$1.trace"
}

mem() { # mem <name> <plugin> <params> <ops>
	agent "$1" mem "$2" "$3"
	"$build/examples/wave-example-kvcache" "$4" "shm://$dir/agent.sock"
	done_agent "$1"
}

rpc() { # rpc <name> <plugin> <params>
	agent "$1" rpc "$2" "$3"
	"$build/examples/wave-example-rpcserver" --udp --port 0 --workers 3 --steer bpf \
		--buckets 16 --agent "shm://$dir/agent.sock" --work-us 50 --report-us 10000 \
		--duration 4 > "$dir/srv.out" 2>&1 &
	srv=$!
	while ! grep -q ready "$dir/srv.out"; do sleep 0.05; done
	port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/srv.out")
	clients=
	for mps in 800 500 300 200 100 50; do
		sockperf under-load -i 127.0.0.1 -p "$port" --mps "$mps" -m 64 -t 2 \
			> /dev/null 2>&1 &
		clients="$clients $!"
	done
	wait "$srv" $clients
	done_agent "$1"
}

mkdir -p "$out"
mem mem_hemem_far mem_hemem '{}' 6000
mem mem_memtis_far mem_memtis '{}' 6000
rpc rpc_rebalance_3w rpc_rebalance '{}'
rpc rpc_hash_3w rpc_hash '{}'
ls -l "$out"
