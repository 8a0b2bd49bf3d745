#!/bin/sh
# wave-agentd --check-config: a bad file is reported as file:line:col and
# the exit status is 1; a good one prints "ok" and exits 0.
# usage: check_config_cli.sh <wave-agentd> <this directory>
set -u
agentd=$1
dir=$2
# refused FILE PATTERN: the check of FILE exits 1 and prints PATTERN (an ERE).
refused() {
	out=$("$agentd" --check-config --config "$dir/$1" 2>&1)
	status=$?
	echo "$out"
	[ "$status" -eq 1 ] || { echo "$1: expected exit status 1, got $status"; exit 1; }
	echo "$out" | grep -Eq "$2" || { echo "$1: no '$2' in the output"; exit 1; }
}
refused bad_agent.json "^$dir/bad_agent.json:3:[0-9]+: heartbeat.timeout_ms: "
# The shipped configurations listen in /run/wave, which systemd makes
# (RuntimeDirectory=) before it checks them (ExecStartPre=): made here too.
if [ ! -d /run/wave ]; then
	mkdir /run/wave 2>/dev/null || { echo "no /run/wave, and not allowed to make it"; exit 77; }
	trap 'rmdir /run/wave' EXIT
fi
good=$("$agentd" --check-config --config "$dir/../../plugins/least_loaded/agent.json") ||
	{ echo "a good configuration was refused"; exit 1; }
[ "$good" = "$dir/../../plugins/least_loaded/agent.json: ok" ] || exit 1
# Every domain the runtime serves is checked the same way (mem: its example).
for p in mem_hemem mem_memtis mem_sdfm; do
	good=$("$agentd" --check-config --config "$dir/../../plugins/$p/agent.json" 2>&1) ||
		{ echo "$good"; echo "the $p example configuration was refused"; exit 1; }
done
# A plugin that cannot be found is an error of the configuration too.
refused missing_plugin.json "wave_no_such_policy\.so"
# A plugin's parameter it does not know (a typo the agent would only warn
# of, running on the default) fails the check, named.
refused param_typo.json "param_typo\.json: plugin sched_shinjuku: domains\.sched\.params\.slice_uss: unknown parameter"
"$agentd" --version | grep -Eq '^wave-agentd [0-9]+\.[0-9]+\.[0-9]+$' || exit 1
"$agentd" --help | grep -q -- '--check-config' || exit 1
"$agentd" >/dev/null 2>&1
[ $? -eq 2 ] || { echo "no arguments must exit 2"; exit 1; }
exit 0
