#!/bin/sh
# keys_documented.sh GENERATOR CONFIG_MD PAGE: every key of the parser's
# table (GENERATOR --list) has its row in docs/config.md and its entry in
# the generated wave.conf(5); docs/config.md lists no key the table lacks.
set -u
gen=$1 md=$2 page=$3
status=0
keys=$("$gen" --list) || { echo "FAIL: $gen --list"; exit 1; }
for k in $keys; do
	grep -qF "| \`$k\` |" "$md" || { echo "FAIL: $md has no row for $k"; status=1; }
	grep -qxF ".It Cm $k" "$page" 2>/dev/null || grep -q "^\.It Cm $k Pq" "$page" ||
		{ echo "FAIL: $page has no entry for $k"; status=1; }
done
# Rows of the key table in the markdown: "| `key` | type |"
for k in $(sed -n 's/^| `\([a-z_.<>]*\)` | .*/\1/p' "$md"); do
	echo "$keys" | grep -qxF "$k" || { echo "FAIL: $md documents $k, which the parser does not know"; status=1; }
done
[ $status -eq 0 ] && echo "ok: $(echo "$keys" | wc -l) keys documented in both"
exit $status
