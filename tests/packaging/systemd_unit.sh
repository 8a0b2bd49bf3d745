#!/bin/sh
# systemd_unit.sh UNIT AGENTD: the wave-agentd unit passes
# `systemd-analyze verify` without a single message, and its hardening
# keeps `systemd-analyze security --offline=yes` at an exposure of 2.0 or
# less (systemd 252: --threshold counts tenths). The unit's ExecStart paths
# are pointed at AGENTD (verify wants an executable there). No running
# systemd is needed. Exit 77 when systemd-analyze is not installed.
set -u
unit=$1 agentd=$2
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "systemd-analyze is not installed (Debian package systemd): cannot check the unit"
	exit 77
fi
dir=$(mktemp -d /tmp/wave-unit-XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
sed -E "s|^(ExecStart(Pre)?=)[^ ]*/wave-agentd |\1$agentd |" "$unit" >"$dir/wave-agentd.service"
grep -q "^ExecStart=$agentd " "$dir/wave-agentd.service" || {
	echo "FAIL: no ExecStart=.../wave-agentd in $unit"
	exit 1
}
status=0
# Man pages are checked by man_lint; verify would look for installed ones.
out=$(systemd-analyze verify --man=no "$dir/wave-agentd.service" 2>&1)
if [ $? -ne 0 ] || [ -n "$out" ]; then
	echo "FAIL: systemd-analyze verify:"
	echo "$out"
	status=1
else
	echo "ok: systemd-analyze verify"
fi
out=$(systemd-analyze security --offline=yes --threshold=20 "$dir/wave-agentd.service" 2>&1)
rc=$?
echo "$out" | grep "Overall exposure"
if [ $rc -ne 0 ]; then
	echo "FAIL: systemd-analyze security: exposure above 2.0 (a hardening option was dropped?):"
	echo "$out" | grep "✗"
	status=1
fi
# What the daemon relies on from the service manager.
for line in Type=notify RuntimeDirectory=wave "ExecReload=/bin/kill -HUP \$MAINPID" \
	WatchdogSec= NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes CapabilityBoundingSet=; do
	grep -q "^$line" "$unit" || { echo "FAIL: $unit lacks $line"; status=1; }
done
exit $status
