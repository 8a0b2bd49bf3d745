#!/bin/sh
# SPDX-License-Identifier: MIT
#
# A host runtime with an offloaded agent, in one command:
#
#   examples/demo.sh [BUILD_DIR] [ROUNDS]
#
# starts wave-example-agent in the background on a socket in a fresh
# temporary directory, waits until it listens, runs wave-example-host
# against it, then makes sure the agent has finished (it exits by itself
# once the host closes the channel) and cleans up. With two CPUs or more
# (and taskset), the agent gets CPU 1 to itself and the host CPU 0, the way
# an agent would own a spare core or a SmartNIC core.
#
# BUILD_DIR is the CMake build tree holding examples/wave-example-agent and
# examples/wave-example-host; without it the programs are looked up on
# $PATH, then in ./build. ROUNDS (default 100000) is passed to the host.
# Exit status: 0 when both programs succeeded, 1 otherwise, 2 for bad usage.
set -u

build=${1:-}
rounds=${2:-100000}

find_prog() {
	if [ -n "$build" ]; then
		[ -x "$build/examples/$1" ] && { echo "$build/examples/$1"; return 0; }
		return 1
	fi
	command -v "$1" 2>/dev/null && return 0
	[ -x "build/examples/$1" ] && { echo "build/examples/$1"; return 0; }
	return 1
}

agent=$(find_prog wave-example-agent) && host=$(find_prog wave-example-host) || {
	echo "demo: wave-example-agent and wave-example-host not found${build:+ in $build/examples}" >&2
	echo "usage: $0 [BUILD_DIR] [ROUNDS]" >&2
	exit 2
}

# Pin the two sides apart when the machine has the CPUs for it.
agent_cpu=
host_cpu=
if command -v taskset >/dev/null 2>&1 && [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ]; then
	agent_cpu="taskset -c 1"
	host_cpu="taskset -c 0"
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/wave-demo.XXXXXX") || exit 1
sock="$dir/agent.sock"
agent_pid=

cleanup() {
	if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
		kill "$agent_pid" 2>/dev/null
		wait "$agent_pid" 2>/dev/null
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# 1. The agent, in the background.
$agent_cpu "$agent" "shm://$sock" &
agent_pid=$!

# 2. Wait (up to 5 s) for its socket to appear.
tries=0
while [ ! -S "$sock" ]; do
	if ! kill -0 "$agent_pid" 2>/dev/null; then
		echo "demo: the agent exited before listening" >&2
		agent_pid=
		exit 1
	fi
	tries=$((tries + 1))
	if [ "$tries" -gt 100 ]; then
		echo "demo: the agent did not start listening within 5 s" >&2
		exit 1
	fi
	sleep 0.05
done

# 3. The host: measures, checks every decision, closes the channel.
status=0
$host_cpu "$host" "shm://$sock" "$rounds" || status=1

# 4. The agent leaves once the host has closed; give it 5 s, then stop it.
tries=0
while kill -0 "$agent_pid" 2>/dev/null && [ "$tries" -lt 100 ]; do
	tries=$((tries + 1))
	sleep 0.05
done
if kill -0 "$agent_pid" 2>/dev/null; then
	echo "demo: the agent did not exit after the host left; stopping it" >&2
	kill "$agent_pid"
	status=1
fi
wait "$agent_pid" || status=1
agent_pid=

if [ "$status" -eq 0 ]; then
	echo "demo: ok"
else
	echo "demo: FAILED" >&2
fi
exit "$status"
