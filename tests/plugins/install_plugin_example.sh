#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# install_plugin_example.sh - write a plugin the way an outside author
# would: install a libwave build into a temporary prefix, build
# examples/plugin against that prefix only (with find_package(wave), and
# with the one-line pkg-config command from example_rr.c), then load each
# result with plugin_run and check the decisions it makes. Also checks that
# the in-tree plugins were installed where the loader looks by default.
#
# usage: install_plugin_example.sh --build-dir DIR --source-dir DIR --run PLUGIN_RUN
#                                  [--cmake CMAKE] [--cc CC]
set -euo pipefail
export LC_ALL=C

build_dir="" source_dir="" run="" cmake_cmd=cmake cc=cc
while [ $# -gt 0 ]; do
	case "$1" in
	--build-dir) build_dir=$2; shift 2 ;;
	--source-dir) source_dir=$2; shift 2 ;;
	--run) run=$2; shift 2 ;;
	--cmake) cmake_cmd=$2; shift 2 ;;
	--cc) cc=$2; shift 2 ;;
	*) echo "install_plugin_example: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ -z "$build_dir" ] || [ -z "$source_dir" ] || [ -z "$run" ]; then
	echo "usage: install_plugin_example.sh --build-dir DIR --source-dir DIR --run PLUGIN_RUN" \
		"[--cmake CMAKE] [--cc CC]" >&2
	exit 2
fi

prefix=$(mktemp -d "${TMPDIR:-/tmp}/wave-plugin-prefix.XXXXXX")
work=$(mktemp -d "${TMPDIR:-/tmp}/wave-plugin-build.XXXXXX")
cleanup() { rm -rf "$prefix" "$work"; }
trap cleanup EXIT

die() { echo "install_plugin_example: FAIL: $*" >&2; exit 1; }

echo "--- cmake --install $build_dir --prefix $prefix"
"$cmake_cmd" --install "$build_dir" --prefix "$prefix" >"$work/install.log" ||
	{ cat "$work/install.log" >&2; die "cmake --install failed"; }
pcfile=$(find "$prefix" -path '*/pkgconfig/wave.pc' | head -n 1)
[ -n "$pcfile" ] || die "no pkgconfig/wave.pc under the prefix"
libdir=$(dirname "$(dirname "$pcfile")")
for f in "$prefix/include/wave/plugin.h" "$prefix/include/wave/config.h" \
	"$prefix/include/wave/plugins/least_loaded.h" \
	"$libdir/wave/plugins/wave_least_loaded.so"; do
	[ -e "$f" ] || die "not installed: ${f#"$prefix"/}"
done

# The decisions example_rr must make for four asks over three workers:
# "decision <type> <cookie> <worker>", as plugin_run prints them.
expected="loaded example_rr 1.0.0
decision 0x8001 0 0
decision 0x8001 1 1
decision 0x8001 2 2
decision 0x8001 3 0"

check_plugin() {
	local what=$1 so=$2 out
	[ -f "$so" ] || die "$what: $so was not built"
	# Exactly one exported function: the name-scoped entry point.
	if nm -D --defined-only "$so" | awk '$2 == "T"' | grep -vq ' wave_plugin_entry_example_rr$'; then
		die "$what: exports more than its entry point:
$(nm -D --defined-only "$so" | awk '$2 == "T"')"
	fi
	out=$("$run" "$so" '{"workers": 3}' 0x8000 0x8000 0x8000 0x8000 | grep -v '^counter') ||
		die "$what: plugin_run failed"
	[ "$out" = "$expected" ] || die "$what: plugin_run printed
$out
but expected
$expected"
	echo "$what: ok"
}

echo "--- find_package(wave) with CMAKE_PREFIX_PATH=$prefix"
"$cmake_cmd" -S "$source_dir/examples/plugin" -B "$work/cmake" "-DCMAKE_PREFIX_PATH=$prefix" \
	"-DCMAKE_C_COMPILER=$cc" "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror" \
	>"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; die "configure failed"; }
"$cmake_cmd" --build "$work/cmake" >"$work/build.log" 2>&1 ||
	{ cat "$work/build.log" >&2; die "build failed"; }
check_plugin cmake "$work/cmake/wave_example_rr.so"

echo "--- pkg-config one-liner"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
mkdir "$work/pc"
# shellcheck disable=SC2046 # pkg-config output is a list of words
"$cc" -std=c11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden \
	$(pkg-config --cflags wave) -o "$work/pc/wave_example_rr.so" \
	"$source_dir/examples/plugin/example_rr.c" || die "pkg-config build failed"
plugindir=$(pkg-config --variable=plugindir wave)
[ "$(readlink -f "$plugindir")" = "$(readlink -f "$libdir/wave/plugins")" ] ||
	die "pkg-config's plugindir is $plugindir, not $libdir/wave/plugins"
check_plugin pkg-config "$work/pc/wave_example_rr.so"

echo "install_plugin_example: the example plugin builds and runs against the installed libwave"
