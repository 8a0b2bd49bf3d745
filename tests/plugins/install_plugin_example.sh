#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# install_plugin_example.sh - write plugins the way an outside author
# would: install a libwave build into a temporary prefix, copy
# examples/plugin out of the source tree and build it against that prefix
# only (with find_package(wave), and with the one-line pkg-config command),
# then load each result and check the decisions it makes: example_rr (a
# custom-domain policy) and example_fifo (a sched-domain policy on the
# installed plugin kit, <wave/plugin_kit/sched_queue.h>) with plugin_run;
# example_mem_idle and example_rpc_rr (the mem and rpc kits) by replaying
# the stored traces of their domains with the installed wave-replay, which
# must decide exactly as with the same files built in the tree. Also
# checks that the in-tree plugins were installed where the loader looks by
# default.
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
for f in "$prefix/include/wave/plugin.h" "$prefix/include/wave/plugin_custom.h" \
	"$prefix/include/wave/plugin_sched.h" "$prefix/include/wave/plugin_loader.h" \
	"$prefix/include/wave/plugin_kit/sched_queue.h" "$prefix/include/wave/config.h" \
	"$prefix/include/wave/plugins/least_loaded.h" \
	"$libdir/wave/plugins/wave_least_loaded.so"; do
	[ -e "$f" ] || die "not installed: ${f#"$prefix"/}"
done

# The decisions each plugin must make, as plugin_run prints them.
# example_rr, four asks over three workers: "decision <type> <cookie> <worker>".
expected_rr="loaded example_rr 1.0.0
decision 0x8001 0 0
decision 0x8001 1 1
decision 0x8001 2 2
decision 0x8001 3 0"
# example_fifo, three tasks on two CPUs: "decision run <task> <cpu>". Task 3
# waits in the queue until task 1's CPU is free again.
expected_fifo="loaded example_fifo 1.0.0
decision run 1 1
decision run 2 0
decision run 3 1"

# check_plugin WHAT NAME SO ARGS...: run SO with plugin_run and compare.
check_plugin() {
	local what=$1 name=$2 so=$3 expected out
	shift 3
	[ -f "$so" ] || die "$what: $so was not built"
	# Exactly one exported function: the name-scoped entry point.
	if nm -D --defined-only "$so" | awk '$2 == "T"' | grep -vq " wave_plugin_entry_$name\$"; then
		die "$what: $name exports more than its entry point:
$(nm -D --defined-only "$so" | awk '$2 == "T"')"
	fi
	out=$("$run" "$so" "$@" | grep -v '^counter') || die "$what: plugin_run $name failed"
	if [ "$name" = example_rr ]; then expected=$expected_rr; else expected=$expected_fifo; fi
	[ "$out" = "$expected" ] || die "$what: plugin_run $name printed
$out
but expected
$expected"
	echo "$what: $name ok"
}

# The installed wave-replay's report of a replay of trace $3 into plugin
# file $2, less the line that times it.
replay() {
	local what=$1 so=$2 trace=$3 out
	out=$(env -u LD_LIBRARY_PATH "$prefix/bin/wave-replay" "$trace" "$so" 2>&1) ||
		die "$what: wave-replay $(basename "$trace") $(basename "$so") failed: $out"
	grep -v '^replay into ' <<<"$out"
}

# Plugin $2 of the mem or rpc domain decides on the stored trace $3 (it
# makes decisions, the model of the host finds no error) exactly as the
# in-tree build of the same file does.
check_replay() {
	local what=$1 name=$2 trace=$source_dir/tests/trace/traces/$3.trace
	local ours=$build_dir/examples/plugin/wave_$name.so out theirs
	[ -f "$4/wave_$name.so" ] || die "$what: $4/wave_$name.so was not built"
	[ -f "$ours" ] || die "$what: $ours (the in-tree build) is missing"
	out=$(replay "$what" "$4/wave_$name.so" "$trace")
	theirs=$(replay "$what" "$ours" "$trace")
	grep -Eq '^  decisions: [0-9]+ recorded, [1-9][0-9]* replayed' <<<"$out" ||
		die "$what: $name made no decision on $3:
$out"
	grep -Eq '^  model_errors +0\.000 +0\.000$' <<<"$out" ||
		die "$what: $name's decisions broke the model of the host on $3:
$out"
	[ "$out" = "$theirs" ] || die "$what: $name decides otherwise than its in-tree build on $3:
$(diff <(echo "$theirs") <(echo "$out"))"
	echo "$what: $name ok ($(grep -oE '[0-9]+ replayed \(digest [0-9a-f]+\)' <<<"$out"))"
}

check_both() {
	check_plugin "$1" example_rr "$2/wave_example_rr.so" '{"workers": 3}' \
		0x8000 0x8000 0x8000 0x8000
	check_plugin "$1" example_fifo "$2/wave_example_fifo.so" 2 3
	check_replay "$1" example_mem_idle mem_hemem_far "$2"
	check_replay "$1" example_rpc_rr rpc_rebalance_3w "$2"
}

# Outside the source tree: only the installed headers can be found.
cp -r "$source_dir/examples/plugin" "$work/src"

echo "--- find_package(wave) with CMAKE_PREFIX_PATH=$prefix"
"$cmake_cmd" -S "$work/src" -B "$work/cmake" "-DCMAKE_PREFIX_PATH=$prefix" \
	"-DCMAKE_C_COMPILER=$cc" "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror" \
	>"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; die "configure failed"; }
"$cmake_cmd" --build "$work/cmake" >"$work/build.log" 2>&1 ||
	{ cat "$work/build.log" >&2; die "build failed"; }
check_both cmake "$work/cmake"

echo "--- pkg-config one-liner"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
mkdir "$work/pc"
for name in example_rr example_fifo example_mem_idle example_rpc_rr; do
	# shellcheck disable=SC2046 # pkg-config output is a list of words
	"$cc" -std=c11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden \
		$(pkg-config --cflags wave) -o "$work/pc/wave_$name.so" "$work/src/$name.c" ||
		die "pkg-config build of $name failed"
done
plugindir=$(pkg-config --variable=plugindir wave)
[ "$(readlink -f "$plugindir")" = "$(readlink -f "$libdir/wave/plugins")" ] ||
	die "pkg-config's plugindir is $plugindir, not $libdir/wave/plugins"
check_both pkg-config "$work/pc"

echo "install_plugin_example: the example plugins build and run against the installed libwave"
