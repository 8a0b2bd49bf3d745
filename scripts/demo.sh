#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/demo.sh - install what is missing, build the release preset and
# run the demo (examples/demo.sh): an agent and a host runtime talking over
# a libwave channel. Extra arguments go to examples/demo.sh after the build
# directory (e.g. the number of rounds).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=${JOBS:-2}

bash scripts/deps.sh
cmake --preset release
cmake --build --preset release --parallel "$jobs"

demo=examples/demo.sh
if [ ! -f "$demo" ]; then
	echo "demo.sh: $demo is missing" >&2
	exit 1
fi
echo
echo "=== running $demo build/release $*"
if [ -x "$demo" ]; then
	exec "./$demo" "$root/build/release" "$@"
fi
exec sh "$demo" "$root/build/release" "$@"
