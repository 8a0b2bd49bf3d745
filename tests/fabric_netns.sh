#!/bin/bash
# SPDX-License-Identifier: MIT
# fabric:// between two "machines": two network namespaces joined by a veth
# pair with private addresses (10.77.0.1 agent, 10.77.0.2 host), made and
# removed by this script. Nothing outside the two namespaces is touched or
# addressed.
#
#   fabric_netns.sh PATH/TO/fabric_peer
#
# 1. a host with the wrong token is refused;
# 2. 200000 messages each way over tcp;ofi_rxm, checked in order (divided
#    by $WAVE_TEST_SCALE, which the sanitizer builds set);
# 3. the link is cut mid-stream: both ends see WAVE_ECLOSED in bounded time.
# Exit 77 (skipped) when namespaces cannot be made or entered (not root, no
# ip, or a chroot whose / is not a mount point).
set -u
peer=${1:?usage: fabric_netns.sh fabric_peer}

[ "$(id -u)" = 0 ] || { echo "skipped: needs root for network namespaces"; exit 77; }
command -v ip >/dev/null 2>&1 || { echo "skipped: no ip(8)"; exit 77; }

id=$$
ns_a="wave_fa_$id"
ns_h="wave_fh_$id"
veth_a="wfa$id"
veth_h="wfh$id"
work=$(mktemp -d) || exit 1

cleanup() {
	[ -n "${apid:-}" ] && kill "$apid" 2>/dev/null
	[ -n "${hpid:-}" ] && kill "$hpid" 2>/dev/null
	ip netns del "$ns_a" 2>/dev/null
	ip netns del "$ns_h" 2>/dev/null
	ip link del "$veth_a" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if ! ip netns add "$ns_a" 2>/dev/null; then
	echo "skipped: cannot create network namespaces"
	exit 77
fi
# "ip netns exec" also needs a private mount namespace in which / can be
# made a slave mount; in a chroot whose / is not a mount point (and in some
# containers) that fails even though "ip netns add" worked.
if ! err=$(ip netns exec "$ns_a" true 2>&1); then
	echo "skipped: cannot run commands in a network namespace: $err"
	exit 77
fi
ip netns add "$ns_h" || exit 1
ip link add "$veth_a" type veth peer name "$veth_h" || exit 1
ip link set "$veth_a" netns "$ns_a" || exit 1
ip link set "$veth_h" netns "$ns_h" || exit 1
ip -n "$ns_a" addr add 10.77.0.1/24 dev "$veth_a" || exit 1
ip -n "$ns_h" addr add 10.77.0.2/24 dev "$veth_h" || exit 1
for ns in "$ns_a" "$ns_h"; do
	ip -n "$ns" link set lo up || exit 1
done
ip -n "$ns_a" link set "$veth_a" up || exit 1
ip -n "$ns_h" link set "$veth_h" up || exit 1

fail() { echo "FAIL: $*"; exit 1; }
count=$((200000 / ${WAVE_TEST_SCALE:-1}))

# 1 + 2: a refused host, then a good one, each way $count messages.
uri="fabric://tcp;ofi_rxm/10.77.0.1:7447"
ip netns exec "$ns_a" "$peer" agent "$uri" "$count" right-token & apid=$!
ip netns exec "$ns_h" "$peer" host "$uri" "$count" wrong-token
rc=$?
[ $rc = 2 ] || fail "host with a wrong token: exit $rc, expected 2 (refused)"
ip netns exec "$ns_h" "$peer" host "$uri" "$count" right-token || fail "host stream"
wait "$apid" || fail "agent stream"
apid=
echo "ok: refusal and $count messages each way between namespaces"

# 3: cut the link mid-stream.
uri="fabric://tcp;ofi_rxm/10.77.0.1:7448"
mark="$work/flowing"
ip netns exec "$ns_a" "$peer" agent "$uri" 0 t & apid=$!
ip netns exec "$ns_h" "$peer" host "$uri" 0 t "$mark" & hpid=$!
# Wait (bounded) until messages flow, then cut.
for _ in $(seq 600); do
	[ -e "$mark" ] && break
	kill -0 "$hpid" 2>/dev/null || break
	sleep 0.1
done
[ -e "$mark" ] || fail "no traffic before the cut"
ip -n "$ns_h" link set "$veth_h" down || fail "cut"
wait "$hpid" || fail "host did not end with WAVE_ECLOSED"
hpid=
wait "$apid" || fail "agent did not end with WAVE_ECLOSED"
apid=
echo "ok: both ends saw the cut link as a closed channel"
exit 0
