#!/bin/sh
# debian_symbols.sh VERSION.map [SYMBOLS]: the Debian symbols file of
# libwave0, made from the linker version script: every exported name with
# its version node, and as minimal version the release that node belongs
# to (node WAVE_X.Y: X.Y.0). The version node itself is a symbol too.
#
# Without SYMBOLS, prints the file (to write debian/libwave0.symbols);
# with it, checks that SYMBOLS is exactly that and says how to regenerate
# it when not (exit 1).
set -eu
here=$(dirname "$0")
map=$1
gen() {
	echo "libwave.so.0 libwave0 #MINVER#"
	echo "* Build-Depends-Package: libwave-dev"
	bash "$here/check_symbols.sh" --print-map "$map" | awk '
		{ node[$2] = 1; print " " $1 "@" $2 " " substr($2, 6) ".0" }
		END { for (n in node) print " " n "@" n " " substr(n, 6) ".0" }' | LC_ALL=C sort
}
if [ $# -eq 1 ]; then
	gen
	exit 0
fi
if gen | diff -u "$2" -; then
	echo "ok: $2 matches $map"
else
	echo "FAIL: $2 differs from $map; regenerate it:"
	echo "  sh tests/packaging/debian_symbols.sh lib/libwave.map > debian/libwave0.symbols"
	exit 1
fi
