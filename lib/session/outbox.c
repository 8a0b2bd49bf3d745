/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

int outbox_flush(struct outbox *ob)
{
	size_t done = 0;

	while (done < ob->n) {
		unsigned k = ob->n - done < OUTBOX_SEND_MAX ? (unsigned)(ob->n - done)
							   : OUTBOX_SEND_MAX;
		int ret = host_send(ob->h, ob->m + done, k);

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
		ob->n = 0;
		return 0;
	}
	memmove(ob->m, ob->m + done, (ob->n - done) * sizeof(*ob->m));
	ob->n -= done;
	return ob->n ? -EAGAIN : 0;
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
