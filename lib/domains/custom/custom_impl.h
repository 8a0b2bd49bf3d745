/* SPDX-License-Identifier: MIT */
/*
 * What the custom domain's host and agent sides share: the latest event of
 * each key, in the decision layer's seeded map (the agent's keys come
 * from the host, which must not be able to choose colliding ones).
 */
#ifndef WAVE_DOMAINS_CUSTOM_IMPL_H
#define WAVE_DOMAINS_CUSTOM_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include <wave/msg.h>

#include "../../decision/u64map.h"
#include "custom.h"

/* One key's latest event. The key comes first (u64map.h). */
struct custom_key {
	uint64_t key;
	uint64_t seq;      /* its host sequence number; 0: just made, no event yet */
	bool pending;      /* no decision applied yet for @seq */
	struct wave_msg ev;
};

static inline int custom_keys_init(struct u64map *keys)
{
	return u64map_init(keys, sizeof(struct custom_key));
}

/* The entry of @key, made (seq 0) if missing; NULL when out of memory.
 * Pointers to other entries are invalid afterwards. */
static inline struct custom_key *custom_key_get(struct u64map *keys, uint64_t key)
{
	struct custom_key *e = u64map_find(keys, key);

	return e ? e : (struct custom_key *)u64map_insert(keys, key);
}

#endif /* WAVE_DOMAINS_CUSTOM_IMPL_H */
