#!/bin/sh
# Traces as tests for the mem and rpc domains: the stored traces
# (traces/mem_*.trace and rpc_*.trace, recorded by wave-agentd serving the
# kvcache and rpcserver examples: record_traces_mem_rpc.sh) replayed with
# wave-replay into every built-in policy of their domain:
#  - into the plugin it was recorded with, a trace gives back exactly the
#    decisions that were recorded;
#  - two replays write byte-identical decisions and print identical
#    figures;
#  - each policy's quality figures on the domain's model of the host match
#    traces/expected_models.txt within 2 %, so a change that makes a policy
#    worse fails (one that makes it better, or a new recording, regenerates
#    the table: update_expected.sh);
#  - the Chrome/Perfetto export is valid JSON with a track per tier or
#    worker, slices and instant events.
# usage: replay_models.sh <wave-replay> <plugin dir> <traces dir>
set -u
replay=$1 plugins=$2 traces=$3
dir=$(mktemp -d /tmp/wave-replay-models-XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

command -v python3 > /dev/null || { echo "SKIP: no python3 to check the JSON"; exit 77; }

policies() {
	case $1 in
	mem_*) echo mem_hemem mem_memtis mem_sdfm ;;
	rpc_*) echo rpc_hash rpc_rebalance rpc_jsq ;;
	esac
}

for t in "$traces"/mem_*.trace "$traces"/rpc_*.trace; do
	name=$(basename "$t" .trace)
	own=$("$replay" "$t" | sed -n 's/.*, plugin \([a-z_]*\) .*/\1/p')
	out=$("$replay" --plugin-dir "$plugins" --no-quality "$t" "$own") || fail "$name: replay"
	echo "$out" | grep -q " 0 of [1-9][0-9]* events decided differently" ||
		fail "$name: $own, the recorded plugin, replayed differently: $out"
	echo "$out" | grep -Eq "decisions: ([0-9]+) recorded, \1 replayed" ||
		fail "$name: decision counts differ: $out"
	for p in $(policies "$name"); do
		for i in 1 2; do
			"$replay" --plugin-dir "$plugins" --decisions "$dir/$i.trace" "$t" "$p" |
				sed '/ M events\/s$/d' > "$dir/$i.out" || fail "$name: replay into $p"
		done
		cmp -s "$dir/1.trace" "$dir/2.trace" || fail "$name $p: two replays decided differently"
		cmp -s "$dir/1.out" "$dir/2.out" || fail "$name $p: two replays printed different figures"
		awk -v t="$name" -v p="$p" '/^quality/ { q = 1; next }
			q && $1 != "figure" { print t, p, $1, $NF }' "$dir/1.out" > "$dir/got"
		grep "^$name $p " "$traces/expected_models.txt" > "$dir/want"
		[ -s "$dir/want" ] || fail "$name $p: no expected figures (update_expected.sh)"
		awk 'NR == FNR { want[$3] = $4; next }
		     {
			if (!($3 in want)) { print "  unexpected figure " $3; bad = 1; next }
			d = $4 - want[$3]; if (d < 0) d = -d
			a = want[$3] < 0 ? -want[$3] : want[$3]
			if (d > 0.02 * a + 1e-6) {
				print "  " $1 " " $2 ": " $3 " " $4 ", expected " want[$3]; bad = 1
			}
			seen[$3] = 1
		     }
		     END { for (f in want) if (!(f in seen)) { print "  missing figure " f; bad = 1 }
			   exit bad }' "$dir/want" "$dir/got" || fail "$name $p: quality figures"
	done
	"$replay" --no-quality --chrome "$dir/t.json" "$t" > /dev/null || fail "$name: chrome export"
	python3 -m json.tool "$dir/t.json" > /dev/null || fail "$name: the export is not JSON"
	python3 - "$dir/t.json" "$name" <<'PY' || fail "$name: the export lacks its tracks or events"
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
names = {e["args"]["name"] for e in ev if e.get("name") == "thread_name"}
want = "tier 0 (numa)" if sys.argv[2].startswith("mem") else "worker 0"
assert want in names, names
phases = {e["ph"] for e in ev}
assert "i" in phases and "C" in phases, phases
assert ("b" in phases and "e" in phases) or "X" in phases, phases
PY
	"$replay" --no-quality --jsonl "$dir/t.jsonl" "$t" > /dev/null || fail "$name: jsonl"
	python3 -c 'import json, sys
for l in open(sys.argv[1]): assert "name" in json.loads(l), l' "$dir/t.jsonl" ||
		fail "$name: JSON lines not decoded"
done
[ $failed -eq 0 ] && echo "ok"
exit $failed
