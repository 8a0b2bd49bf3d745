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

int outbox_flush(struct outbox *ob)
{
	while (ob->n) {
		int ret = host_send(ob->h, ob->m, (unsigned)ob->n);

		if (ret < 0) {
			/* Lost (on_state() dropped the outbox) or not connected:
			 * either way a resync replaces these. */
			ob->n = 0;
			return 0;
		}
		if (ret == 0)
			return -EAGAIN;
		memmove(ob->m, ob->m + ret, (ob->n - (size_t)ret) * sizeof(*ob->m));
		ob->n -= (size_t)ret;
		ob->sent += (uint64_t)ret;
	}
	return 0;
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
