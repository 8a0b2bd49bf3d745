/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "host_impl.h"
#include "outbox.h"

#define OUTBOX_FIRST_CAP 64u

int outbox_init(struct outbox *ob, struct wave_host *h, uint32_t batch)
{
	if (!batch)
		return -EINVAL;
	*ob = (struct outbox){ .h = h, .batch = batch, .cap = OUTBOX_FIRST_CAP };
	ob->m = malloc(ob->cap * sizeof(*ob->m));
	return ob->m ? 0 : -ENOMEM;
}

void outbox_fini(struct outbox *ob)
{
	free(ob->m);
	ob->m = NULL;
	ob->n = ob->cap = 0;
}

/* Messages one send carries at most: a send checks every message it is
 * given, and a backlog behind a slow agent may outgrow what one send may
 * carry (WAVE_CHAN_MAX_SLOTS), so a flush costs what the ring takes, not
 * what waits. */
#define OUTBOX_SEND_MAX 256u

/* How long an agent may stay behind, in heartbeat timeouts: room for a
 * resync's burst on a loaded machine, where the agent catches up. */
#define BEHIND_TIMEOUTS 4u

/* Whether the agent, behind since a flush first left some waiting, has
 * been for BEHIND_TIMEOUTS heartbeat timeouts, and so is lost. */
static bool too_far_behind(struct outbox *ob)
{
	uint64_t now = wave_now_ns();
	char why[96];

	if (!ob->behind_since) {
		ob->behind_since = now;
		return false;
	}
	if (now - ob->behind_since < BEHIND_TIMEOUTS * host_timeout_ns(ob->h))
		return false;
	snprintf(why, sizeof(why), "agent too far behind: %zu events still wait after %u heartbeat "
		 "timeouts", ob->n, BEHIND_TIMEOUTS);
	host_lose_agent(ob->h, why); /* drops this outbox (on_state()) */
	outbox_drop(ob);
	return true;
}

int outbox_flush(struct outbox *ob)
{
	size_t done = 0;

	while (done < ob->n) {
		unsigned k = ob->n - done < OUTBOX_SEND_MAX ? (unsigned)(ob->n - done)
							   : OUTBOX_SEND_MAX;
		int ret = ob->quiet ? host_send_quiet(ob->h, ob->m + done, k)
				    : host_send(ob->h, ob->m + done, k);

		if (ret < 0) {
			/* Lost (on_state() dropped the outbox) or not connected:
			 * either way a resync replaces these. */
			ob->n = 0;
			return 0;
		}
		done += (size_t)ret;
		ob->sent += (uint64_t)ret;
		if ((unsigned)ret < k)
			break; /* the ring is full, or the agent lost after a part */
	}
	if (done > ob->n) { /* lost meanwhile: on_state() dropped the outbox */
		outbox_drop(ob);
		return 0;
	}
	memmove(ob->m, ob->m + done, (ob->n - done) * sizeof(*ob->m));
	ob->n -= done;
	if (!ob->n) {
		ob->behind_since = 0;
		return 0;
	}
	return too_far_behind(ob) ? 0 : -EAGAIN;
}

int outbox_push(struct outbox *ob, const struct wave_msg *m)
{
	if (ob->n == ob->cap) {
		size_t cap = ob->cap * 2;
		struct wave_msg *grown = realloc(ob->m, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		ob->m = grown;
		ob->cap = cap;
	}
	ob->m[ob->n++] = *m;
	if (ob->n >= ob->batch)
		(void)outbox_flush(ob);
	return 0;
}
