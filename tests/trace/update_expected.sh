#!/bin/sh
# Regenerates tests/trace/traces/expected_models.txt, the quality figures
# replay_models.sh expects of each stored mem and rpc trace under each
# built-in policy of its domain: one line per figure, "trace policy figure
# value", from wave-replay's own table. Run it after re-recording the
# traces (record_traces_mem_rpc.sh), or after a change that makes a policy
# or the model better (say so in the commit):
#   sh tests/trace/update_expected.sh build/release tests/trace/traces
set -eu
build=$1 dir=$2
out="$dir/expected_models.txt"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

policies() {
	case $1 in
	mem_*) echo mem_hemem mem_memtis mem_sdfm ;;
	rpc_*) echo rpc_hash rpc_rebalance rpc_jsq ;;
	esac
}

echo "# trace policy figure value (tests/trace/update_expected.sh made it)" > "$tmp"
for t in "$dir"/mem_*.trace "$dir"/rpc_*.trace; do
	name=$(basename "$t" .trace)
	for p in $(policies "$name"); do
		"$build/tools/wave-replay" --plugin-dir "$build/plugins" "$t" "$p" |
			awk -v t="$name" -v p="$p" '
				/^quality/ { q = 1; next }
				q && $1 != "figure" { print t, p, $1, $NF }' >> "$tmp"
	done
done
chmod 644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
wc -l "$out"
