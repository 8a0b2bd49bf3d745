#!/bin/bash
# SPDX-License-Identifier: MIT
# wave-example-rpcserver against the real sockperf client (Debian package
# sockperf), over UDP and TCP: under-load (and, over TCP, ping-pong) must
# run to the end with replies measured, and the server must count no
# malformed message. The same through the in-process dispatcher, by flow
# (--steer dispatch, with the rpc_hash agent on a thread of the server) and
# by class (--steer pick, over UDP with the rpc_darc agent, over TCP with
# no agent): every request the dispatcher handed on
# was served, refused on a full queue, or left queued at the stop, none
# lost. As root, the same over libwave's steering table in the kernel,
# driven by an agent on a thread of the server (the rpc_hash plugin): every
# request must have been steered by the table. Asserts no timing. Exit 77
# (skipped) without sockperf.
#
#   sockperf_interop.sh PATH/TO/wave-example-rpcserver PLUGIN_DIR
set -u
server=${1:?usage: sockperf_interop.sh wave-example-rpcserver plugin-dir}
plugins=${2:?usage: sockperf_interop.sh wave-example-rpcserver plugin-dir}
command -v sockperf >/dev/null 2>&1 || { echo "skipped: sockperf is not installed"; exit 77; }

work=$(mktemp -d) || exit 1
spid=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat >"$work/agent.json" <<EOF
{
  "listen": ["shm://$work/agent.sock"],
  "heartbeat": { "period_ms": 100, "timeout_ms": 10000 },
  "plugin_path": ["$plugins"],
  "domains": { "rpc": { "plugin": "rpc_hash" } }
}
EOF
sed 's/"rpc_hash"/"rpc_darc"/' "$work/agent.json" >"$work/agent-darc.json"
runs="udp tcp udp-dispatch tcp-dispatch udp-pick tcp-pick"
if [ "$(id -u)" = 0 ]; then
	runs="$runs udp-agent"
else
	echo "not root: the kernel steering run is left out"
fi
for run in $runs; do
	proto=${run%%-*}
	extra=()
	agent=(--agent "shm://$work/agent.sock" --agent-config "$work/agent.json")
	case $run in
	*-agent) extra=(--steer bpf "${agent[@]}") ;;
	*-dispatch) extra=(--steer dispatch "${agent[@]}") ;;
	udp-pick) extra=(--steer pick --class 500:5 --agent "shm://$work/agent.sock"
		--agent-config "$work/agent-darc.json") ;;
	*-pick) extra=(--steer pick --class 500:5) ;;
	esac
	"$server" --$proto --port 0 --workers 2 --work-us 1 --json "${extra[@]}" \
		>"$work/out" 2>"$work/err" &
	spid=$!
	# Up to a minute: a loaded machine is slow, never wrong (a start is
	# about 0.25 s here; one under a concurrent CI once took over 10 s).
	for _ in $(seq 600); do
		grep -q '^ready' "$work/out" && break
		sleep 0.1
	done
	port=$(sed -n 's/^ready [a-z]* [0-9.]*:\([0-9]*\) .*/\1/p' "$work/out")
	if [ -z "$port" ]; then
		kill -0 "$spid" 2>/dev/null && st="still starting after 60 s" ||
			{ wait "$spid"; st="exit status $?"; }
		fail "$run: the server did not start ($st): $(cat "$work/err")"
	fi
	flag=
	[ $proto = tcp ] && flag=--tcp
	# ping-pong has one request in flight and never resends it: one UDP
	# datagram lost (a receive buffer overflowing on a busy machine, for
	# sockperf's own server too) stalls it for good. Over UDP only the open
	# loop runs, where a loss costs one reply.
	modes=("under-load --mps 2000 --reply-every 1")
	[ "$proto" = tcp ] && modes+=("ping-pong")
	for mode in "${modes[@]}"; do
		# shellcheck disable=SC2086 # $mode and $flag are lists of words
		sockperf $mode $flag -i 127.0.0.1 -p "$port" -t 2 -m 64 >"$work/sp" 2>&1 ||
			fail "$proto $mode: sockperf failed: $(tail -5 "$work/sp")"
		n=$(sed -n 's/.*Total \([0-9]*\) observations.*/\1/p' "$work/sp" | tail -1)
		[ -n "$n" ] && [ "$n" -gt 0 ] || fail "$proto $mode: no observations: $(tail -5 "$work/sp")"
		echo "ok: $proto $mode: $n observations"
	done
	kill -TERM "$spid"
	wait "$spid" || fail "$proto: the server exited with an error"
	spid=
	stats=$(tail -1 "$work/out")
	case "$stats" in
	*'"malformed":0,'*'"truncated":0,'*) ;;
	*) fail "$proto: the server counted bad messages from sockperf: $stats" ;;
	esac
	# The first (whole-server) value of counter $1.
	num() { grep -o "\"$1\":[0-9]*" <<<"$stats" | head -1 | cut -d: -f2; }
	case $run in
	udp-dispatch | udp-pick)
		# One sockperf message per datagram: each one handed on is served,
		# refused, or still queued at the stop.
		[ $(($(num served) + $(num warmup) + $(num left_at_stop))) = "$(num dispatched)" ] &&
			[ "$(num no_worker)" = 0 ] && [ "$(num dispatched)" -gt 0 ] ||
			fail "$run: the dispatcher's requests are not accounted for: $stats" ;;
	tcp-dispatch | tcp-pick)
		[ "$(num dispatched)" = "$(num connections)" ] && [ "$(num dispatched)" -gt 0 ] ||
			fail "$run: connections handed on and taken differ: $stats" ;;
	esac
	if [ "$run" = udp-agent ]; then
		served=$(sed -n 's/^{"steer":"[^"]*","served":\([0-9]*\),.*/\1/p' <<<"$stats")
		steered=$(sed -n 's/.*"bpf_steered":\([0-9]*\),.*/\1/p' <<<"$stats")
		[ -n "$served" ] && [ "$served" -gt 0 ] && [ "$steered" -ge "$served" ] ||
			fail "$run: $served requests served but $steered steered by the table: $stats"
	fi
	echo "ok: $run server: $stats"
done
