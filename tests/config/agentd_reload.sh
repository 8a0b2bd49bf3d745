#!/bin/sh
# wave-agentd at start and on SIGHUP:
#  - a plugin whose init fails stops the start, naming the file and error;
#  - a reload that changes "cpus" moves every thread of the daemon there
#    (and back to the CPUs it started with when "cpus" is dropped);
#  - a reload to CPUs that are not online, or to a plugin whose init fails,
#    is refused and leaves everything as it was;
#  - a configuration path that is a FIFO is refused at once (SIGTERM still
#    stops the daemon).
# Needs two CPUs this process may run on (else exit 77).
# usage: agentd_reload.sh <wave-agentd> <plugin dir> <test plugin dir>
set -u
agentd=$1
export WAVE_PLUGIN_PATH="$2:$3"
unset WAVE_LOG
dir=$(mktemp -d /tmp/wave-reload-XXXXXX) || exit 1
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- daemon log"; cat "$dir/log" 2>/dev/null; exit 1; }

# The CPUs this shell may use, one per line ("0-2,5" -> 0 1 2 5).
allowed=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)
cpus=$(echo "$allowed" | tr ',' '\n' | awk -F- '{ hi = NF > 1 ? $2 : $1;
	for (c = $1; c <= hi; c++) print c }')
a=$(echo "$cpus" | sed -n 1p)
b=$(echo "$cpus" | sed -n 2p)
[ -n "$b" ] || { echo "needs two usable CPUs, has $allowed"; exit 77; }

config() { # config <cpus json or ""> <plugin>
	printf '{ "listen": ["shm://%s/agent.sock"], %s\n  "domains": { "custom": { "plugin": "%s" } } }\n' \
		"$dir" "${1:+\"cpus\": [$1],}" "$2" > "$dir/agent.json"
}
log_count() { # lines of the log holding $1; 0 before the daemon made it
	n=$(grep -c -- "$1" "$dir/log" 2>/dev/null)
	echo "${n:-0}"
}
# Waits (up to a minute: a loaded machine is slow, never wrong) for the
# n-th line of the log holding $2.
wait_log() {
	i=0
	while [ "$(log_count "$2")" -lt "$1" ]; do
		kill -0 "$pid" 2>/dev/null || fail "daemon died waiting for '$2'"
		i=$((i + 1)); [ $i -lt 1200 ] || fail "no '$2' in the log"
		sleep 0.05
	done
}
# Every thread of the daemon may run on exactly $1.
threads_on() {
	for s in /proc/"$pid"/task/*/status; do
		got=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$s")
		[ "$got" = "$1" ] || fail "thread ${s%/status} on $got, expected $1"
	done
}

# A plugin whose init fails is an error at start, not a silent refusal of
# every host later.
config "" init_fails
out=$(timeout 60 "$agentd" --config "$dir/agent.json" 2>&1)
status=$?
[ "$status" -eq 1 ] || fail "init_fails: expected exit 1, got $status: $out"
echo "$out" | grep -q "wave_init_fails.so: init failed: Input/output error" ||
	fail "init_fails: the error is not named: $out"

config "$a" least_loaded
"$agentd" --config "$dir/agent.json" 2>"$dir/log" &
pid=$!
wait_log 1 "serving"
threads_on "$a"

config "$b" least_loaded
kill -HUP "$pid"
wait_log 1 "configuration reloaded"
threads_on "$b"

config "" least_loaded
kill -HUP "$pid"
wait_log 2 "configuration reloaded"
threads_on "$allowed"

config "$a, 1023" least_loaded
kill -HUP "$pid"
wait_log 1 "reload refused"
grep -q "CPU 1023 is not online" "$dir/log" || fail "offline CPU not named"
threads_on "$allowed"

config "$a" init_fails
kill -HUP "$pid"
wait_log 2 "reload refused"
grep -q "wave_init_fails.so: init failed" "$dir/log" || fail "init error not named on reload"
threads_on "$allowed"

rm "$dir/agent.json"
mkfifo "$dir/agent.json"
kill -HUP "$pid"
wait_log 1 "is a FIFO; a configuration must be a regular file"
kill -TERM "$pid"
wait "$pid"
status=$?
pid=
[ "$status" -eq 0 ] || fail "SIGTERM: exit $status"
exit 0
