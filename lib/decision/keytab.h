/* SPDX-License-Identifier: MIT */
/*
 * Per-key state of the custom domain: the latest event for each key, its
 * host sequence number and whether a decision has been applied for it.
 * Both ends keep one: the host to refuse stale and duplicate decisions and
 * to decide pending events locally when the agent goes; the agent to stamp
 * decisions and to replay its state into a hot-swapped plugin.
 * An open-addressing table that only grows (keys are the application's
 * current state, so they are not forgotten).
 */
#ifndef WAVE_SESSION_KEYTAB_H
#define WAVE_SESSION_KEYTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wave/msg.h>

struct kt_entry {
	struct wave_msg ev; /* the latest event for the key */
	uint64_t key;
	uint64_t seq;  /* its host sequence number; 0: slot unused */
	bool pending;  /* no decision applied yet for @seq */
};

struct keytab {
	struct kt_entry *e;
	size_t cap; /* a power of two, or 0 */
	size_t n;
};

void kt_init(struct keytab *t);
void kt_fini(struct keytab *t);
/* The entry of @key, or NULL. */
struct kt_entry *kt_find(const struct keytab *t, uint64_t key);
/* The entry of @key, made (seq 0) if missing; NULL when out of memory.
 * The caller sets a new entry's seq (non-zero) before any other call.
 * Invalidates pointers to other entries. */
struct kt_entry *kt_get(struct keytab *t, uint64_t key);

#endif /* WAVE_SESSION_KEYTAB_H */
