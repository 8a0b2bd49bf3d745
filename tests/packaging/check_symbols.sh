#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check_symbols.sh - compare what a shared library exports with its linker
# version script.
#
#   check_symbols.sh [--nm NM] [--readelf READELF] [--archive LIBRARY.a]
#                    LIBRARY.so VERSION.map
#
# Every name listed under "global:" in a node of the map must be exported by
# the library with that node as its version (name@@NODE, or name@NODE for an
# older, non-default version), and every symbol the library defines in its
# dynamic symbol table must be listed in the map under the node it carries.
# An exported symbol without a version is an error too.
#
# With --archive, the static library built from the same objects is checked
# too: every symbol its objects mark for export (global, default visibility,
# i.e. declared WAVE_API under -fvisibility=hidden) must be listed in the
# map. This catches a new API function that was never added to the map,
# which the version script would otherwise hide without a word.
#
# Exit status: 0 when library and map agree, 1 when they differ (each
# difference is printed), 2 on a usage or tool error.
#
#   check_symbols.sh --print-map VERSION.map
#
# prints the map's "name node" pairs instead, sorted (the Debian symbols
# file is made from them: debian_symbols.sh).
set -euo pipefail
export LC_ALL=C

nm_tool="nm"
readelf_tool="readelf"
archive=""
print_map=""
while [ $# -gt 0 ]; do
	case "$1" in
	--print-map) print_map=1; shift ;;
	--nm) nm_tool=$2; shift 2 ;;
	--readelf) readelf_tool=$2; shift 2 ;;
	--archive) archive=$2; shift 2 ;;
	--) shift; break ;;
	-*) echo "check_symbols: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
if [ -n "$print_map" ] && [ $# -eq 1 ]; then
	lib=""
	map=$1
elif [ $# -ne 2 ]; then
	echo "usage: check_symbols.sh [--nm NM] [--readelf READELF] [--archive LIBRARY.a] LIBRARY.so VERSION.map" >&2
	echo "       check_symbols.sh --print-map VERSION.map" >&2
	exit 2
else
	lib=$1
	map=$2
fi
for f in ${lib:+"$lib"} "$map" ${archive:+"$archive"}; do
	if [ ! -r "$f" ]; then
		echo "check_symbols: cannot read $f" >&2
		exit 2
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- the map: one "name node" line per global name -------------------------
# Comments (/* */ and #) are dropped, then the script is read as a stream of
# tokens: NODE { [global:] names; [local:] patterns; } [PARENT] ;
# A pattern (*, ?, [) under global: cannot be compared name by name, so it
# is refused: the map must list every exported name explicitly.
awk '
	BEGIN { incomment = 0; state = "top"; bad = 0 }
	{
		line = $0
		out = ""
		while (length(line) > 0) {
			if (incomment) {
				i = index(line, "*/")
				if (i == 0) { line = ""; break }
				line = substr(line, i + 2)
				incomment = 0
			} else {
				i = index(line, "/*")
				if (i == 0) { out = out line; line = ""; break }
				out = out substr(line, 1, i - 1) " "
				line = substr(line, i + 2)
				incomment = 1
			}
		}
		sub(/#.*/, "", out)
		gsub(/[{};:]/, " & ", out)
		n = split(out, tok, /[ \t]+/)
		for (k = 1; k <= n; k++) {
			t = tok[k]
			if (t == "") continue
			if (state == "top") {
				if (t == ";") continue
				node = t; state = "open"
			} else if (state == "open") {
				if (t != "{") { printf "check_symbols: map: expected { after %s, found %s\n", node, t > "/dev/stderr"; bad = 1; exit 2 }
				print "NODE " node
				state = "body"; section = "global"
			} else if (state == "body") {
				if (t == "}") { state = "after"; continue }
				if (t == ";" ) continue
				if (t == ":") continue
				if (t == "global" || t == "local") { section = t; continue }
				if (section == "local") continue
				if (t ~ /[*?\[]/) { printf "check_symbols: map: node %s uses the pattern \"%s\" under global:; list names explicitly\n", node, t > "/dev/stderr"; bad = 1; exit 2 }
				print "SYM " t " " node
			} else if (state == "after") {
				# the parent node name (or the closing ;)
				if (t == ";") state = "top"
			}
		}
	}
	END {
		if (bad) exit 2
		if (state != "top") { print "check_symbols: map: unterminated node " node > "/dev/stderr"; exit 2 }
	}
' "$map" >"$tmp/map.raw"

{ grep '^NODE ' "$tmp/map.raw" || true; } | cut -d' ' -f2 | sort -u >"$tmp/nodes"
{ grep '^SYM ' "$tmp/map.raw" || true; } | cut -d' ' -f2,3 | sort -u >"$tmp/map"
if [ ! -s "$tmp/map" ]; then
	echo "check_symbols: $map lists no global names" >&2
	exit 2
fi
if [ -n "$print_map" ]; then
	cat "$tmp/map"
	exit 0
fi

# --- the library: one "name version" line per defined dynamic symbol --------
# nm prints versioned names as name@@NODE (default) or name@NODE (hidden
# older version). A node's own definition shows up as an absolute symbol
# named after the node; it is not an exported function or object.
if ! "$nm_tool" -D --defined-only "$lib" >"$tmp/nm.out" 2>"$tmp/nm.err"; then
	echo "check_symbols: $nm_tool -D --defined-only $lib failed:" >&2
	cat "$tmp/nm.err" >&2
	exit 2
fi
: >"$tmp/lib"
: >"$tmp/lib.nodes"
: >"$tmp/unversioned"
while read -r a b c; do
	# "VALUE TYPE NAME"; a few nm versions omit the value of absolute symbols
	if [ -z "${c:-}" ]; then
		type=$a; name=$b
	else
		type=$b; name=$c
	fi
	base=${name%%@*}
	if [ "$base" = "$name" ]; then
		ver=""
	else
		ver=${name##*@}
	fi
	# A version node: an absolute symbol named after the node (printed bare,
	# or as NODE@@NODE by some nm versions).
	if [ "$type" = A ] && { [ -z "$ver" ] || [ "$ver" = "$base" ]; }; then
		echo "$base" >>"$tmp/lib.nodes"
		continue
	fi
	if [ -z "$ver" ]; then
		echo "$base" >>"$tmp/unversioned"
	else
		echo "$base $ver" >>"$tmp/lib"
	fi
done <"$tmp/nm.out"
sort -u -o "$tmp/lib" "$tmp/lib"
sort -u -o "$tmp/unversioned" "$tmp/unversioned"
sort -u -o "$tmp/lib.nodes" "$tmp/lib.nodes"

# --- compare ------------------------------------------------------------------
status=0
report() { # report TITLE FILE: print FILE's lines under TITLE, if any
	if [ -s "$2" ]; then
		echo "$1"
		sed 's/^/    /' "$2"
		status=1
	fi
}
# Names present on both sides but under different nodes are reported once, as
# a version mismatch, rather than as one missing and one extra symbol.
cut -d' ' -f1 "$tmp/map" | sort -u >"$tmp/map.names"
cut -d' ' -f1 "$tmp/lib" | sort -u >"$tmp/lib.names"
comm -23 "$tmp/lib" "$tmp/map" >"$tmp/lib.only"
comm -13 "$tmp/lib" "$tmp/map" >"$tmp/map.only"
: >"$tmp/wrong.ver"
: >"$tmp/extra"
: >"$tmp/missing"
while read -r n v; do
	if grep -qxF -- "$n" "$tmp/map.names"; then
		echo "$n@$v (the map puts it in:$(awk -v n="$n" '$1 == n { printf " %s", $2 }' "$tmp/map"))" >>"$tmp/wrong.ver"
	else
		echo "$n@$v" >>"$tmp/extra"
	fi
done <"$tmp/lib.only"
while read -r n v; do
	if ! grep -qxF -- "$n" "$tmp/lib.names" && ! grep -qxF -- "$n" "$tmp/unversioned"; then
		echo "$n (node $v)" >>"$tmp/missing"
	elif ! grep -qxF -- "$n" "$tmp/unversioned"; then
		# exported, but not under this node: reported above unless the
		# library has no version of it matching any node
		grep -q "^$n@" "$tmp/wrong.ver" || echo "$n: not exported under node $v" >>"$tmp/wrong.ver"
	fi
done <"$tmp/map.only"

report "exported by $lib but not in $map:" "$tmp/extra"
report "listed in $map but not exported by $lib:" "$tmp/missing"
report "exported without a symbol version (is the version script applied?):" "$tmp/unversioned"
report "exported under a different version node than the map says:" "$tmp/wrong.ver"
comm -23 "$tmp/lib.nodes" "$tmp/nodes" >"$tmp/nodes.extra"
comm -13 "$tmp/lib.nodes" "$tmp/nodes" >"$tmp/nodes.missing"
report "version nodes defined by the library but not in the map:" "$tmp/nodes.extra"
report "version nodes in the map but not defined by the library:" "$tmp/nodes.missing"

if [ -n "$archive" ]; then
	# readelf -sW: Num: Value Size Type Bind Vis Ndx Name
	if ! "$readelf_tool" -sW "$archive" >"$tmp/readelf.out" 2>"$tmp/readelf.err"; then
		echo "check_symbols: $readelf_tool -sW $archive failed:" >&2
		cat "$tmp/readelf.err" >&2
		exit 2
	fi
	awk '($5 == "GLOBAL" || $5 == "WEAK") && ($6 == "DEFAULT" || $6 == "PROTECTED") && $7 != "UND" && NF >= 8 { print $8 }' \
		"$tmp/readelf.out" | sort -u >"$tmp/ar.names"
	if [ ! -s "$tmp/ar.names" ]; then
		echo "check_symbols: no exported symbols found in $archive" >&2
		exit 2
	fi
	comm -23 "$tmp/ar.names" "$tmp/map.names" >"$tmp/ar.extra"
	report "marked for export (default visibility) in $archive but not in $map:" "$tmp/ar.extra"
fi

if [ "$status" -eq 0 ]; then
	echo "check_symbols: $(wc -l <"$tmp/map") symbols in $(wc -l <"$tmp/nodes") node(s) match $map"
fi
exit "$status"
