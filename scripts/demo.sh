#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/demo.sh - install what is missing, build the release preset and
# run the demo: (1) an agent and a host talking over a libwave channel
# (examples/demo.sh; extra arguments go to it after the build directory,
# e.g. the number of rounds), then (2) the scheduling table: FIFO and
# Shinjuku decided on-host and offloaded to wave-agentd, beside Linux's
# scheduler (bench/wave-bench-sched).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=${JOBS:-2}

bash scripts/deps.sh
cmake --preset release
cmake --build --preset release --parallel "$jobs"

# 1. The channel: an agent process and a host process ping-pong decisions
#    over shm:// and print latency and throughput (examples/demo.sh).
echo
echo "=== 1. a host and an offloaded agent over a shm channel (examples/demo.sh)"
sh examples/demo.sh "$root/build/release" "$@"

# 2. The main job: a host runtime whose every dispatch is decided by a
#    scheduling policy (FIFO, Shinjuku) in an agent thread of its own process
#    (on-host) or in wave-agentd (offloaded), beside Linux's own scheduler,
#    on a Shinjuku-style workload; one table of throughput and tail latency.
echo
echo "=== 2. offloaded scheduling: FIFO and Shinjuku, on-host and offloaded, against Linux"
exec "$root/build/release/bench/wave-bench-sched" --modes linux,onhost,offload,off-1us,off-1us-np \
	--policies fifo,shinjuku --rates 6000,10000 --requests 10000 --reps 3
