/* SPDX-License-Identifier: MIT */
/*
 * The kernel half of RPC steering: a BPF_PROG_TYPE_SK_REUSEPORT program
 * that picks, for each UDP datagram and each TCP SYN that reaches a
 * SO_REUSEPORT group, the worker socket the steering table names.
 *
 *   bucket = the kernel's flow hash & bucket_mask
 *   worker = table[bucket]
 *   socket = workers[worker]
 *
 * The hash is the one the kernel's own reuseport selection uses (the
 * 4-tuple hashed with a per-boot secret), so the table partitions flows
 * exactly as Linux would, only into buckets the agent can move. Built with
 * clang -target bpf; rpc_reuseport.c loads it through the skeleton bpftool
 * generates from the object.
 *
 * A bucket whose worker slot is empty (a worker being replaced) or any
 * failure to select falls back to the kernel's own hashing (SK_PASS with no
 * socket selected): a packet is never dropped here.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* n_buckets - 1, set by the loader before the program is loaded. */
const volatile __u32 bucket_mask = 0;

/* worker -> socket; max_entries is set to the worker count at open. */
struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} workers SEC(".maps");

/* bucket -> worker: the steering table; max_entries = n_buckets. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} table SEC(".maps");

/* bucket -> arrivals (packets for UDP, SYNs for TCP), per CPU so that the
 * count costs no shared cache line: the load report's per-bucket rates. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} arrivals SEC(".maps");

/* worker -> packets (UDP) or SYNs (TCP) sent to its socket by the table,
 * per CPU; max_entries = the worker count. Less what the worker has taken
 * and what the kernel dropped, it is the worker's queue depth. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} delivered SEC(".maps");

/* Index 0: steered by the table; 1: fell back to the kernel's hashing. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} outcomes SEC(".maps");

static __always_inline void count(void *map, __u32 key)
{
	__u64 *n = bpf_map_lookup_elem(map, &key);

	if (n)
		*n += 1;
}

SEC("sk_reuseport")
int wave_rpc_steer(struct sk_reuseport_md *md)
{
	__u32 bucket = md->hash & bucket_mask;
	__u32 *worker;

	count(&arrivals, bucket);
	worker = bpf_map_lookup_elem(&table, &bucket);
	if (worker && bpf_sk_select_reuseport(md, &workers, worker, 0) == 0) {
		count(&outcomes, 0);
		count(&delivered, *worker);
		return SK_PASS;
	}
	count(&outcomes, 1);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
