/* SPDX-License-Identifier: MIT */
/*
 * What the custom domain's host and agent sides share: the latest event of
 * each key, in the decision layer's seeded map (the agent's keys come
 * from the host, which must not be able to choose colliding ones).
 */
#ifndef WAVE_DOMAINS_CUSTOM_IMPL_H
#define WAVE_DOMAINS_CUSTOM_IMPL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <wave/host.h>
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

/* The entry of @key into *@e, made (seq 0) if missing. Return: 0;
 * -ENOSPC when @key is new and WAVE_HOST_MAX_KEYS are held; -ENOMEM.
 * Pointers to other entries are invalid afterwards. */
static inline int custom_key_get(struct u64map *keys, uint64_t key, struct custom_key **e)
{
	if ((*e = u64map_find(keys, key)))
		return 0;
	if (u64map_count(keys) >= WAVE_HOST_MAX_KEYS)
		return -ENOSPC;
	*e = u64map_insert(keys, key);
	return *e ? 0 : -ENOMEM;
}

#endif /* WAVE_DOMAINS_CUSTOM_IMPL_H */
