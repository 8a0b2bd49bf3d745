#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# debian_packages.sh - build the Debian packages the way a distribution
# would and use them the way an operator and a developer would:
#
#   1. scripts/packages.sh: dpkg-buildpackage -us -uc -b in a copy of the
#      tree (nocheck: the unit tests run in the other CI steps);
#   2. and lintian on the result: no error, no warning;
#   3. a clean Debian 12 root (mmdebstrap from deb.debian.org) with the
#      packages installed, in which
#        - the packaged default configuration checks out;
#        - a consumer program is built against the installed libwave-dev
#          (find_package(wave) and pkg-config) and runs;
#        - the example plugin shipped in libwave-dev's documentation is
#          built out of tree, and the installed wave-agentd runs it next to
#          a built-in plugin, checked by wave-stat --prometheus.
#
# Needs root (a chroot), network access to deb.debian.org, and
# dpkg-buildpackage, debhelper, lintian and mmdebstrap (scripts/deps.sh
# installs them); exits 77 saying which is missing otherwise. Takes a few
# minutes, mostly downloading the root's packages.
#
# usage: debian_packages.sh SOURCE_DIR
set -euo pipefail
export LC_ALL=C

src=$(cd "$1" && pwd)
skip() { echo "SKIP: $*"; exit 77; }
die() { echo "debian_packages: FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg-buildpackage's install step and a chroot)"
for t in dpkg-buildpackage dh lintian mmdebstrap; do
	command -v "$t" >/dev/null 2>&1 || skip "$t is not installed (scripts/deps.sh installs it)"
done
timeout 20 bash -c 'exec 3<>/dev/tcp/deb.debian.org/80' 2>/dev/null ||
	skip "deb.debian.org:80 is not reachable: no clean Debian 12 root can be made"

work=$(mktemp -d "${TMPDIR:-/tmp}/wave-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- 1, 2. build, lintian ------------------------------------------------------------
step "scripts/packages.sh: dpkg-buildpackage and lintian"
bash "$src/scripts/packages.sh" "$work/debs" || die "building the packages failed"
debs=()
for p in libwave0 libwave-dev wave-agentd; do
	d=$(ls "$work"/debs/${p}_*.deb 2>/dev/null) || die "no $p package was built"
	debs+=("$d")
done

# --- 3. a clean Debian 12 root -----------------------------------------------------
step "mmdebstrap bookworm with the packages, building and running inside"
mkdir -p "$work/in/debs"
cp "${debs[@]}" "$work/in/debs/"
cp -r "$src/tests/packaging/consumer" "$work/in/consumer"
cat >"$work/in/agent.json" <<'JSON'
{
  "listen": ["shm:///run/wave/agent.sock"],
  "stats_socket": "/run/wave/stats.sock",
  "plugin_path": ["/tmp/plugin/build"],
  "metrics": { "port": 0 },
  "domains": {
    "custom": { "plugin": "example_rr", "params": { "workers": 4 } },
    "sched": { "plugin": "sched_fifo" }
  }
}
JSON
cat >"$work/in/inside.sh" <<'SH'
#!/bin/bash
# Runs in the new root, as an operator and a developer would.
set -euxo pipefail
# As an operator would: apt installs them with their dependencies.
apt-get install -y -q --no-install-recommends /tmp/in/debs/*.deb
mkdir -p /run/wave
wave-agentd --version
wave-agentd --check-config --config /etc/wave/agent.json
man -w wave-agentd wave.conf wave-stat libwave

# A consumer built against the installed -dev package.
cd /tmp/in/consumer
cc -std=c11 -Wall -Wextra -Werror consumer.c -o consumer_pc $(pkg-config --cflags --libs wave)
./consumer_pc
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build >/dev/null
build/consumer_cmake

# The example plugin from the documentation, built out of tree.
cp -r /usr/share/doc/libwave-dev/examples/plugin /tmp/plugin
cmake -S /tmp/plugin -B /tmp/plugin/build >/dev/null
cmake --build /tmp/plugin/build >/dev/null
ls /tmp/plugin/build/wave_example_rr.so

# The installed agent runs it, next to an installed plugin.
wave-agentd --check-config --config /tmp/in/agent.json
wave-agentd --config /tmp/in/agent.json 2>/tmp/agentd.log &
pid=$!
for i in $(seq 600); do
	grep -q serving /tmp/agentd.log && break
	kill -0 $pid
	sleep 0.1
done
cat /tmp/agentd.log
wave-stat --prometheus /run/wave/stats.sock >/tmp/metrics
grep 'wave_plugin_info{domain="custom",plugin="example_rr",' /tmp/metrics
grep 'wave_plugin_info{domain="sched",plugin="sched_fifo",' /tmp/metrics
# ... and serves the same over HTTP.
port=$(sed -n 's|.*metrics on http://127.0.0.1:\([0-9]*\)/metrics|\1|p' /tmp/agentd.log)
exec 3<>/dev/tcp/127.0.0.1/$port
printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
grep -q '^wave_plugin_info{domain="custom",plugin="example_rr",' <&3
exec 3<&-
kill -TERM $pid
wait $pid
echo "inside: ok"
SH
# (mmdebstrap --include=PATH.deb cannot reach the file from inside the root
# in root mode: apt installs them there, from a copy.)
mmdebstrap --variant=apt --mode=root --format=null \
	--include=build-essential,cmake,pkgconf,man-db \
	--customize-hook="copy-in $work/in /tmp" \
	--customize-hook='chroot "$1" bash /tmp/in/inside.sh' \
	bookworm /dev/null http://deb.debian.org/debian >"$work/root.log" 2>&1 ||
	{ tail -n 80 "$work/root.log" >&2; die "installing or using the packages in a clean root failed"; }
grep -q "inside: ok" "$work/root.log" || { tail -n 80 "$work/root.log" >&2; die "the checks inside did not finish"; }
sed -n '/^+ wave-agentd --version/,/inside: ok/p' "$work/root.log" | grep -v '^+' | tail -n 20

echo "debian_packages: built, lintian clean, installed and used in a clean Debian 12 root"
