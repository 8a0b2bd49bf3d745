#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# install_consumer.sh - install a libwave build into a temporary prefix,
# check that every installed header compiles on its own, and build and run a
# small program against the installed copy, three ways:
#
#   (a) cc consumer.c $(pkg-config --cflags --libs wave)     shared library
#   (b) a CMake project: find_package(wave 0.1) + wave::wave  shared library
#       and wave::wave_static                                 static library
#   (c) pkg-config --static --libs wave, against libwave.a    static library
#
# Each program must print the expected version and move messages over a
# shm:// channel (see consumer/consumer.c). Then (d) an agent linked with
# libwave.a and -Wl,--export-dynamic, by pkg-config and by CMake
# (ENABLE_EXPORTS), must load an installed plugin of every domain
# (consumer/static_agent.c), when the install has plugins. Everything is
# built and run in directories made with mktemp -d and removed at the end.
#
# usage: install_consumer.sh --build-dir DIR --source-dir DIR --version X.Y.Z
#                            [--cmake CMAKE] [--cc CC] [--flags "CFLAGS"]
#
# --flags are added to every compile and link of the consumer; a sanitizer
# build of libwave passes its -fsanitize= flags here, since an instrumented
# library needs an instrumented program.
set -euo pipefail
export LC_ALL=C

build_dir="" source_dir="" version="" cmake_cmd=cmake cc=cc flags=""
while [ $# -gt 0 ]; do
	case "$1" in
	--build-dir) build_dir=$2; shift 2 ;;
	--source-dir) source_dir=$2; shift 2 ;;
	--version) version=$2; shift 2 ;;
	--cmake) cmake_cmd=$2; shift 2 ;;
	--cc) cc=$2; shift 2 ;;
	--flags) flags=$2; shift 2 ;;
	*) echo "install_consumer: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ -z "$build_dir" ] || [ -z "$source_dir" ] || [ -z "$version" ]; then
	echo "usage: install_consumer.sh --build-dir DIR --source-dir DIR --version X.Y.Z" \
		"[--cmake CMAKE] [--cc CC] [--flags CFLAGS]" >&2
	exit 2
fi
consumer_src="$source_dir/tests/packaging/consumer"
# shellcheck disable=SC2206 # the flags are a list of words on purpose
flag_words=($flags)

prefix=$(mktemp -d "${TMPDIR:-/tmp}/wave-prefix.XXXXXX")
work=$(mktemp -d "${TMPDIR:-/tmp}/wave-consumer.XXXXXX")
cleanup() { rm -rf "$prefix" "$work"; }
trap cleanup EXIT

step() { echo "--- $*"; }
die() { echo "install_consumer: FAIL: $*" >&2; exit 1; }

expected="libwave $version (headers $version)
channel: 8 messages verified, reply verified"

# run_consumer NAME BINARY [shared|static]: run it, compare its output and
# check which libwave it was linked with.
run_consumer() {
	local name=$1 bin=$2 kind=$3 out
	if [ "$kind" = static ]; then
		if readelf -dW "$bin" | grep -q 'NEEDED.*libwave\.so'; then
			die "$name: linked statically but needs libwave.so:
$(readelf -dW "$bin" | grep NEEDED)"
		fi
	else
		# The loader must pick the installed copy, not a build tree or a
		# system-wide install.
		local resolved
		resolved=$(LD_LIBRARY_PATH="$libdir" ldd "$bin" | awk '$1 ~ /^libwave\.so/ { print $3 }')
		[ -n "$resolved" ] &&
			[ "$(readlink -f "$resolved")" = "$(readlink -f "$libdir/libwave.so.${version%%.*}")" ] ||
			die "$name: resolves libwave to '$resolved', not to the installed copy in $libdir"
	fi
	if ! out=$(LD_LIBRARY_PATH="$libdir" "$bin" 2>"$work/$name.err"); then
		cat "$work/$name.err" >&2
		die "$name exited with an error; its output was:
$out"
	fi
	if [ "$out" != "$expected" ]; then
		cat "$work/$name.err" >&2
		die "$name printed
$out
but expected
$expected"
	fi
	echo "$name: ok ($kind)"
}

# --- install ------------------------------------------------------------------
step "cmake --install $build_dir --prefix $prefix"
"$cmake_cmd" --install "$build_dir" --prefix "$prefix" >"$work/install.log" ||
	{ cat "$work/install.log" >&2; die "cmake --install failed"; }

pcfile=$(find "$prefix" -path '*/pkgconfig/wave.pc')
[ -n "$pcfile" ] && [ "$(printf '%s\n' "$pcfile" | wc -l)" -eq 1 ] ||
	die "expected exactly one pkgconfig/wave.pc under the prefix, found: '${pcfile}'"
libdir=$(dirname "$(dirname "$pcfile")")
for f in "$libdir/libwave.so" "$libdir/libwave.so.${version%%.*}" "$libdir/libwave.so.$version" \
	"$libdir/libwave.a" "$libdir/cmake/wave/waveConfig.cmake" \
	"$libdir/cmake/wave/waveConfigVersion.cmake" "$libdir/cmake/wave/waveTargets.cmake" \
	"$prefix/include/wave/wave.h" "$prefix/include/wave/version.h"; do
	[ -e "$f" ] || die "not installed: ${f#"$prefix"/}"
done
# Installed text files must not point back into the build or source tree:
# the package has to work once those are gone.
if leaks=$(grep -rlF -e "$(readlink -f "$build_dir")" -e "$(readlink -f "$source_dir")" \
	--include='*.pc' --include='*.cmake' --include='*.h' "$prefix"); then
	die "installed files refer to the build or source tree: $leaks"
fi

# Each installed header compiles on its own: it includes what it uses, so a
# program (or a plugin) can include just the headers it needs; and from C++,
# as a C library's headers are used (build-essential has g++).
cxx=${CXX:-c++}
command -v "$cxx" >/dev/null || { echo "(no C++ compiler $cxx: headers checked as C only)"; cxx=""; }
step "every installed header on its own${cxx:+, as C and as C++ ($cxx)}"
while IFS= read -r h; do
	printf '#include <%s>\n' "$h" |
		"$cc" "${flag_words[@]}" -std=c11 -Wall -Wextra -Werror -fsyntax-only \
			-I"$prefix/include" -x c - || die "<$h> does not compile on its own"
	[ -z "$cxx" ] || printf '#include <%s>\n' "$h" |
		"$cxx" -std=c++17 -Wall -Wextra -Werror -fsyntax-only \
			-I"$prefix/include" -x c++ - || die "<$h> does not compile as C++"
done < <(cd "$prefix/include" && find wave -name '*.h' | sort)
# A plugin written in C++: WAVE_PLUGIN_DEFINE gives its entry point C
# linkage, the name the loader looks up.
if [ -n "$cxx" ]; then
	step "a plugin in C++ exports wave_plugin_entry_<name> unmangled"
	cat >"$work/cxx_plugin.cpp" <<'CXX'
#include <wave/plugin_custom.h>
static int on_event(wave_plugin_ctx *, const wave_msg *) { return 0; }
static const wave_custom_ops ops = { sizeof(wave_custom_ops), on_event, nullptr };
WAVE_PLUGIN_DEFINE(cxx_policy, WAVE_DOMAIN_CUSTOM, "1.0", nullptr, nullptr, nullptr, &ops)
CXX
	"$cxx" -std=c++17 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden \
		-I"$prefix/include" -o "$work/wave_cxx_policy.so" "$work/cxx_plugin.cpp" ||
		die "a C++ plugin does not build"
	nm -D --defined-only "$work/wave_cxx_policy.so" | grep -qw 'wave_plugin_entry_cxx_policy' ||
		die "a C++ plugin's entry point is not wave_plugin_entry_cxx_policy: $(nm -D "$work/wave_cxx_policy.so")"
	if [ -x "$prefix/bin/wave-agentd" ]; then
		echo "{ \"listen\": [\"shm://$work/cxx.sock\"],
			\"domains\": { \"custom\": { \"plugin\": \"$work/wave_cxx_policy.so\" } } }" \
			>"$work/cxx.json"
		out=$(env -u LD_LIBRARY_PATH "$prefix/bin/wave-agentd" --check-config \
			--config "$work/cxx.json" 2>&1) || die "the agent refuses a C++ plugin: $out"
	fi
fi

# --- the installed daemon -------------------------------------------------------
# It must start from the prefix without LD_LIBRARY_PATH (its RUNPATH leads to
# the libwave beside it) and load that copy, not another one.
agentd="$prefix/bin/wave-agentd"
if [ -x "$agentd" ]; then
	step "installed wave-agentd runs without LD_LIBRARY_PATH"
	readelf -dW "$agentd" | grep -qE '\((RUNPATH|RPATH)\)' ||
		die "wave-agentd has no RUNPATH: it cannot find libwave in $libdir"
	resolved=$(env -u LD_LIBRARY_PATH ldd "$agentd" | awk '$1 ~ /^libwave\.so/ { print $3 }')
	[ -n "$resolved" ] &&
		[ "$(readlink -f "$resolved")" = "$(readlink -f "$libdir/libwave.so.${version%%.*}")" ] ||
		die "wave-agentd resolves libwave to '$resolved', not to the installed copy in $libdir"
	out=$(env -u LD_LIBRARY_PATH "$agentd" --version) || die "installed wave-agentd: $out"
	[ "$out" = "wave-agentd $version" ] || die "installed wave-agentd --version: '$out'"
	# An installed libwave finds the plugins installed with it, in the
	# prefix given at install time (not the configured one), and never
	# takes the build tree's for its own.
	echo "{ \"listen\": [\"shm://$work/agent.sock\"],
		\"domains\": { \"sched\": { \"plugin\": \"sched_fifo\" } } }" >"$work/agent.json"
	out=$(env -u LD_LIBRARY_PATH -u WAVE_PLUGIN_PATH WAVE_LOG=info "$agentd" --check-config \
		--config "$work/agent.json" 2>&1) ||
		die "installed wave-agentd does not find the installed sched_fifo: $out"
	case "$out" in
	*"loaded from $libdir/wave/plugins/wave_sched_fifo.so"*) ;;
	*) die "installed wave-agentd loaded sched_fifo from elsewhere than $libdir/wave/plugins: $out" ;;
	esac
	echo '{ "listen": ["shm:///nonexistent/a.sock"], "domains": { "sched": { "plugin": "no_such" } } }' \
		>"$work/missing.json"
	out=$(env -u LD_LIBRARY_PATH -u WAVE_PLUGIN_PATH "$agentd" --check-config \
		--config "$work/missing.json" 2>&1) &&
		die "installed wave-agentd accepted a plugin that does not exist: $out"
	case "$out" in
	*"$(readlink -f "$build_dir")"* | *"$build_dir"*)
		die "installed wave-agentd searched the build tree: $out" ;;
	*"not found (searched: $libdir/wave/plugins/wave_no_such.so"*) ;;
	*) die "installed wave-agentd: unexpected error: $out" ;;
	esac
	echo "wave-agentd: ok ($(readelf -dW "$agentd" | grep -oE 'runpath: .*'))"
fi

# --- (a) pkg-config, shared -----------------------------------------------------
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
step "pkg-config (PKG_CONFIG_PATH=$libdir/pkgconfig)"
pc_version=$(pkg-config --modversion wave) || die "pkg-config does not find wave"
[ "$pc_version" = "$version" ] || die "pkg-config says wave $pc_version, expected $version"
# The .pc file must describe the prefix it was installed into, wherever that is.
pc_inc=$(pkg-config --variable=includedir wave)
pc_lib=$(pkg-config --variable=libdir wave)
[ "$(readlink -f "$pc_inc")" = "$(readlink -f "$prefix/include")" ] ||
	die "wave.pc: includedir is '$pc_inc', not in the install prefix $prefix"
[ "$(readlink -f "$pc_lib")" = "$(readlink -f "$libdir")" ] ||
	die "wave.pc: libdir is '$pc_lib', not in the install prefix $prefix"
cflags=$(pkg-config --cflags wave)
libs=$(pkg-config --libs wave)
echo "cflags: $cflags"
echo "libs:   $libs"
# shellcheck disable=SC2086 # pkg-config output is a list of words
"$cc" "${flag_words[@]}" -std=c11 -Wall -Wextra -Werror -o "$work/consumer_pc" \
	"$consumer_src/consumer.c" $cflags $libs || die "building with pkg-config failed"
run_consumer consumer_pc "$work/consumer_pc" shared

# --- (b) find_package(wave) -------------------------------------------------------
step "find_package(wave 0.1) with CMAKE_PREFIX_PATH=$prefix"
cmake_args=(-S "$consumer_src" -B "$work/cmake-build" -DCMAKE_BUILD_TYPE=Debug
	"-DCMAKE_PREFIX_PATH=$prefix" "-DCMAKE_C_COMPILER=$cc")
if [ -n "$flags" ]; then
	cmake_args+=("-DCMAKE_C_FLAGS=$flags" "-DCMAKE_EXE_LINKER_FLAGS=$flags")
fi
"$cmake_cmd" "${cmake_args[@]}" >"$work/cmake-configure.log" 2>&1 ||
	{ cat "$work/cmake-configure.log" >&2; die "configuring the CMake consumer failed"; }
wave_dir=$(sed -n 's/^wave_DIR:PATH=//p' "$work/cmake-build/CMakeCache.txt")
[ "$(readlink -f "$wave_dir")" = "$(readlink -f "$libdir/cmake/wave")" ] ||
	die "find_package(wave) found '$wave_dir', not the installed copy"
"$cmake_cmd" --build "$work/cmake-build" >"$work/cmake-build.log" 2>&1 ||
	{ cat "$work/cmake-build.log" >&2; die "building the CMake consumer failed"; }
run_consumer consumer_cmake "$work/cmake-build/consumer_cmake" shared
run_consumer consumer_cmake_static "$work/cmake-build/consumer_cmake_static" static

# --- (c) pkg-config --static, against libwave.a ---------------------------------------
step "pkg-config --static against libwave.a"
static_libs=()
for w in $(pkg-config --static --libs wave); do
	# -lwave would pick libwave.so; ask the linker for the archive by name.
	if [ "$w" = -lwave ]; then
		static_libs+=("-l:libwave.a")
	else
		static_libs+=("$w")
	fi
done
echo "libs:   ${static_libs[*]}"
# shellcheck disable=SC2086
"$cc" "${flag_words[@]}" -std=c11 -Wall -Wextra -Werror -o "$work/consumer_pc_static" \
	"$consumer_src/consumer.c" $cflags "${static_libs[@]}" || die "static build with pkg-config failed"
run_consumer consumer_pc_static "$work/consumer_pc_static" static

# --- (d) a static agent loads a plugin of every domain ------------------------------
plugindir=$(pkg-config --variable=plugindir wave)
if [ -e "$plugindir/wave_sched_fifo.so" ]; then
	step "an agent linked with libwave.a loads the installed plugins"
	# shellcheck disable=SC2086
	"$cc" "${flag_words[@]}" -std=c11 -Wall -Wextra -Werror -Wl,--export-dynamic \
		-o "$work/static_agent_pc" "$consumer_src/static_agent.c" $cflags \
		"${static_libs[@]}" || die "static agent build with pkg-config failed"
	cat >"$work/static_agent.json" <<EOF_CONF
{
  "listen": ["shm://$work/agent.sock"],
  "plugin_path": ["$plugindir"],
  "domains": { "sched": { "plugin": "sched_fifo" }, "mem": { "plugin": "mem_hemem" },
               "rpc": { "plugin": "rpc_hash" } }
}
EOF_CONF
	for agent in "$work/static_agent_pc" "$work/cmake-build/static_agent_cmake"; do
		out=$(env -u LD_LIBRARY_PATH -u WAVE_PLUGIN_PATH "$agent" "$work/static_agent.json" \
			2>&1) || die "$(basename "$agent"): $out"
		[ "$out" = "agent: plugins loaded" ] || die "$(basename "$agent") printed: $out"
		echo "$(basename "$agent"): ok"
	done
else
	echo "(no plugins installed: the static agent is not checked)"
fi

echo "install_consumer: all consumers built and ran against the installed libwave $version"
