#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/deps.sh - install the Debian 12 packages libwave needs to build,
# test and benchmark. Safe to rerun: when everything is installed already it
# returns at once without touching apt. Runs as root, or as a user with sudo.
# Never reads stdin.
#
# What each package is for:
#   build-essential     gcc, make, binutils (nm, readelf), libc headers
#   cmake, pkg-config   the build; pkg-config finds the libraries below
#   libnuma-dev         NUMA placement of channel memory (mbind, numa_*)
#   libfabric-dev       the fabric:// transport (libfabric)
#   libfabric-bin       fi_info, fi_pingpong: fabric diagnostics and the
#                       benchmark's reference point
#   libjansson-dev      JSON configuration files
#   liblz4-dev, libzstd-dev
#                       the mem domain's far store compresses chunks (lz4 by
#                       default, zstd as an option; BENCHMARKS.md)
#   check               the unit-test framework
#   clang               the second compiler every change must build with
#   libclang-rt-dev     clang's runtimes, libFuzzer among them: the clang
#                       preset's fuzz target (only recommended by clang, and
#                       recommendations are not installed here)
#   iproute2, procps    ip/ss and ps/pgrep, used by demos and benchmarks
#   libmicrohttpd-dev   wave-agentd's HTTP endpoint for Prometheus metrics
#   libsystemd-dev      wave-agentd's sd_notify (Type=notify, the watchdog)
#   mandoc              the manual pages' lint test (mandoc -T lint)
#   systemd             systemd-analyze, for the unit's verify and security
#                       test (installing it does not make it the init)
#   debhelper, lintian, mmdebstrap
#                       the Debian packaging test: dpkg-buildpackage with
#                       dh, lintian on the result, a clean Debian 12 root
#   libibverbs-dev, librdmacm-dev, libpsm2-dev, libpsm-infinipath1-dev
#                       only for `pkg-config --static --libs wave`: Debian's
#                       libfabric.pc names these libraries in Libs.private,
#                       so a static link line needs their -dev symlinks
#                       (the psm libraries are built for amd64 only)
set -euo pipefail

packages=(
	build-essential cmake pkg-config
	libnuma-dev libfabric-dev libfabric-bin libjansson-dev liblz4-dev libzstd-dev check
	clang libclang-rt-dev iproute2 procps
	libmicrohttpd-dev libsystemd-dev mandoc systemd
	debhelper lintian mmdebstrap
	libibverbs-dev librdmacm-dev
)
if [ "$(dpkg --print-architecture 2>/dev/null || true)" = amd64 ]; then
	packages+=(libpsm2-dev libpsm-infinipath1-dev)
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: this script needs a Debian system (dpkg, apt-get). Install by hand:" >&2
	echo "  ${packages[*]}" >&2
	exit 1
fi

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$status" in
	ii*) ;;
	*) missing+=("$p") ;;
	esac
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#packages[@]} packages are installed"
	exit 0
fi
echo "deps: installing ${missing[*]}"

if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1; then
	# sudo asks for a password on the terminal, never on stdin; with no
	# terminal and no cached credentials it fails instead of waiting.
	as_root=(sudo)
else
	echo "deps: not root and sudo is not installed; as root, run:" >&2
	echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

apt_opts=(-q -o Acquire::Retries=3 -o DPkg::Lock::Timeout=600)
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update </dev/null
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y \
	--no-install-recommends -o Dpkg::Options::=--force-confdef \
	-o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null
echo "deps: done"
