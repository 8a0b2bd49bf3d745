#!/bin/sh
# One data-driven case of wave-agentd --check-config: <case>/config.json,
# checked from inside <case>, must exit 1 and print exactly
# <case>/expected_error on stderr. What depends on the machine or the build
# is written as @CPUS_ONLINE@ (the kernel's list of online CPUs) and
# @TEST_PLUGIN_DIR@ (where the test plugins were built, also the plugin
# search path).
# usage: agentd_case.sh <wave-agentd> <case dir> <test plugin dir>
set -u
agentd=$1
dir=$2
plugins=$3
online=$(cat /sys/devices/system/cpu/online 2>/dev/null) || {
	echo "no /sys/devices/system/cpu/online here"; exit 77; }
want=$(sed -e "s|@CPUS_ONLINE@|$online|g" -e "s|@TEST_PLUGIN_DIR@|$plugins|g" \
	"$dir/expected_error")
cd "$dir" || exit 1
got=$(env -u WAVE_LOG WAVE_PLUGIN_PATH="$plugins" "$agentd" --check-config \
	--config config.json 2>&1 >/dev/null)
status=$?
if [ "$status" -ne 1 ] || [ "$got" != "$want" ]; then
	printf 'expected (exit 1):\n%s\ngot (exit %s):\n%s\n' "$want" "$status" "$got"
	exit 1
fi
exit 0
