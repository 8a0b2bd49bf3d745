#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/packages.sh - build libwave's Debian packages (libwave0,
# libwave-dev, wave-agentd) from this tree and check them with lintian:
#
#   bash scripts/packages.sh [OUT_DIR]     # default: out/
#
# The tree is copied (without build/ and .git) and built there with
# dpkg-buildpackage -us -uc -b, without running the test suite (that is
# scripts/test.sh's job); lintian must find no error and no warning. The
# .deb files land in OUT_DIR, ready for
#
#   apt install ./out/wave-agentd_*.deb ./out/libwave-dev_*.deb
#
# Needs the build dependencies (scripts/deps.sh installs them, and
# debhelper and lintian). Environment: JOBS (default 2).
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mkdir -p "${1:-$root/out}" && cd "${1:-$root/out}" && pwd)
for t in dpkg-buildpackage dh lintian; do
	command -v "$t" >/dev/null 2>&1 ||
		{ echo "packages: $t is not installed (scripts/deps.sh installs it)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/wave-packages.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "packages: dpkg-buildpackage in a copy of $root"
mkdir -p "$work/libwave"
tar -C "$root" --exclude=./build --exclude=./out --exclude=./.git -cf - . | tar -C "$work/libwave" -xf -
if ! (cd "$work/libwave" &&
	DEB_BUILD_OPTIONS="nocheck parallel=${JOBS:-2}" dpkg-buildpackage -us -uc -b) \
	>"$work/build.log" 2>&1; then
	tail -n 60 "$work/build.log" >&2
	echo "packages: dpkg-buildpackage failed (log above)" >&2
	exit 1
fi
echo "packages: lintian"
if ! lintian --fail-on error,warning "$work"/*.changes; then
	echo "packages: lintian found errors or warnings (above)" >&2
	exit 1
fi
for p in libwave0 libwave-dev wave-agentd; do
	ls "$work"/${p}_*.deb >/dev/null 2>&1 || { echo "packages: no $p package" >&2; exit 1; }
done
cp "$work"/*.deb "$out"/
ls "$out"/*.deb
