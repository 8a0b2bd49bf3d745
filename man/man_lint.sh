#!/bin/sh
# man_lint.sh PAGE...: every manual page renders without a warning
# (mandoc -T lint -W warning). Exit 77 when mandoc is not installed.
set -u
if ! command -v mandoc >/dev/null 2>&1; then
	echo "mandoc is not installed (Debian package mandoc): cannot lint the pages"
	exit 77
fi
status=0
for page in "$@"; do
	# -W warning: warnings and worse; "style" messages are advice only.
	if out=$(mandoc -T lint -W warning "$page" 2>&1) && [ -z "$out" ]; then
		echo "ok: $page"
	else
		echo "FAIL: $page"
		echo "$out"
		status=1
	fi
done
exit $status
