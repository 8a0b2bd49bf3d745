#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/test.sh - everything CI checks, on one machine:
#
#   1. scripts/deps.sh (installs what is missing; quick when nothing is)
#   2. for each CMake preset: configure, build, run every test
#        release  Release, gcc
#        dev      Debug, AddressSanitizer + UndefinedBehaviorSanitizer
#        tsan     RelWithDebInfo, ThreadSanitizer
#        clang    RelWithDebInfo, clang, and 20 s of libFuzzer on the sched decoders
#   3. one summary line per preset; exit status 1 if any step failed.
#
# A failing preset does not stop the others. Build trees go to build/<preset>.
#
# Environment:
#   JOBS      parallel build and test jobs (default 2)
#   PRESETS   presets to run, space separated (default "release dev tsan clang")
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
jobs=${JOBS:-2}
read -r -a presets <<<"${PRESETS:-release dev tsan clang}"

bash scripts/deps.sh || { echo "test.sh: installing dependencies failed" >&2; exit 1; }

declare -A result
failed=0
total_start=$SECONDS
for p in "${presets[@]}"; do
	start=$SECONDS
	log="build/$p/ctest.log"
	echo
	echo "=== $p: configure"
	if ! cmake --preset "$p"; then
		result[$p]="FAIL  configure failed"
	else
		echo "=== $p: build"
		if ! cmake --build --preset "$p" --parallel "$jobs"; then
			result[$p]="FAIL  build failed"
		else
			echo "=== $p: test"
			ctest --preset "$p" --output-on-failure --parallel "$jobs" 2>&1 | tee "$log"
			rc=${PIPESTATUS[0]}
			counts=$(grep -E '^[0-9]+% tests passed' "$log" | tail -n 1)
			skipped=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(Skipped|Not Run)' "$log")
			[ "$skipped" -gt 0 ] && counts="$counts, $skipped skipped"
			if [ "$rc" -eq 0 ]; then
				result[$p]="PASS  ${counts:-tests passed}"
			else
				result[$p]="FAIL  ${counts:-ctest failed (exit $rc)}"
			fi
		fi
	fi
	case "${result[$p]}" in FAIL*) failed=1 ;; esac
	result[$p]="${result[$p]}  ($((SECONDS - start)) s)"
	echo "=== $p: ${result[$p]}"
done

echo
echo "=== summary ($((SECONDS - total_start)) s)"
for p in "${presets[@]}"; do
	printf 'test.sh: %-8s %s\n' "$p" "${result[$p]}"
done
exit "$failed"
