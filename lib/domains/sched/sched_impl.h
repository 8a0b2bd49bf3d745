/* SPDX-License-Identifier: MIT */
/* Internal structures of the sched domain's agent-side state model. */
#ifndef WAVE_SCHED_IMPL_H
#define WAVE_SCHED_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <wave/plugin_sched.h>
#include <wave/sched_msg.h>
#include <wave/sched_state.h>

#include "../../decision/pending.h"
#include "../../decision/u64map.h"

/* Tells a real state from any other pointer in a context's domain_state. */
#define SCHED_STATE_MAGIC UINT64_C(0x7761766573636864)

/* One task, stored inline in the hash table; id 0 marks an empty slot (the
 * decoder refuses task id 0). Kept at 56 bytes: the table's size is the
 * agent's memory per task. */
struct sched_task {
	uint64_t id;
	uint64_t seq;
	uint64_t runtime_ns;
	uint64_t run_start_ns;
	uint64_t hint;
	uint32_t cpu;         /* running on, or WAVE_SCHED_CPU_NONE */
	uint32_t cpu_hint;
	struct dec_pend pend; /* a PENDING_* decision in flight for a CPU */
	uint8_t state;        /* enum wave_sched_task_state */
	uint8_t hint_kind;
	uint8_t pad;
};
_Static_assert(sizeof(struct sched_task) == 56, "the task size is documented");

/* The kinds of a task's decision in flight; a CPU's slot kind - 1 holds
 * its task (struct dec_pend). */
enum { PENDING_NONE, PENDING_RUN, PENDING_PRESTAGE, PENDING_KINDS = PENDING_PRESTAGE };

struct sched_cpu {
	uint64_t current;   /* task id or 0 */
	/* The tasks of the RUN and the PRESTAGE in flight, or 0. */
	uint64_t slot[PENDING_KINDS];
	uint64_t idle_since_ns;
	uint32_t preempting;
	uint32_t pad;
};
_Static_assert(sizeof(struct sched_cpu) == 40, "the CPU size is documented");

struct wave_sched_state {
	uint64_t magic;
	uint32_t n_cpus;
	uint32_t n_words;   /* of free_map */
	uint64_t cpu_mod;   /* x % n_cpus without a division (sched_cpu_find_free()) */
	struct u64map tasks; /* of struct sched_task; ids are chosen by the peer */
	uint64_t max_tasks;  /* WAVE_SCHED_MAX_TASKS (a test lowers it) */
	struct sched_cpu *cpus;
	uint64_t *free_map; /* bit set: nothing running, pending or prestaged */
	uint32_t n_free;    /* bits set in @free_map: a busy host's search ends at once */
	struct wave_sched_stats stats; /* its refused_* come from @refused */
	struct dec_refusals refused;   /* the plugin's decisions refused */
	struct sched_task *hot;        /* the task last found or inserted, or NULL */
};

/*
 * The task table: the decision layer's seeded map, in front of it the
 * task last found or inserted. An event and the plugin's calls for it ask
 * for the same task several times, and a queueing policy asks for the
 * head of its queue at every event until it runs. @hot points into the
 * table's slots, which only an insertion reallocates (it resets @hot); a
 * removal may shift another entry, or none, into its slot: the id tells.
 */
static inline struct sched_task *sched_task_find(struct wave_sched_state *st, uint64_t id)
{
	struct sched_task *t = st->hot;

	if (t && t->id == id && id)
		return t;
	if (!id || !(t = u64map_find(&st->tasks, id)))
		return NULL;
	return st->hot = t;
}

/* Inserts @id (not present, not 0); NULL when the table cannot grow.
 * Other pointers into the table are invalid afterwards (entries move). */
static inline struct sched_task *sched_task_insert(struct wave_sched_state *st, uint64_t id)
{
	return st->hot = u64map_insert(&st->tasks, id);
}

/* Removes @t; other pointers are invalid afterwards. */
static inline void sched_task_remove(struct wave_sched_state *st, struct sched_task *t)
{
	u64map_remove(&st->tasks, t);
}

/* The task in slot @i of the table, or NULL for an empty slot: walks
 * from 0 to st->tasks.mask see every task. */
static inline struct sched_task *sched_task_at(const struct wave_sched_state *st, size_t i)
{
	struct sched_task *t = u64map_at(&st->tasks, i);

	return t->id ? t : NULL;
}

/* What a plugin sees of @t. Inline: every event and most plugin calls
 * make one. */
static inline void sched_task_view(const struct sched_task *t, struct wave_sched_task *out)
{
	memset(out, 0, sizeof(*out));
	out->id = t->id;
	out->seq = t->seq;
	out->runtime_ns = t->runtime_ns;
	out->run_start_ns = t->run_start_ns;
	out->hint = t->hint;
	out->state = t->state;
	out->cpu = t->cpu;
	out->pending_cpu = t->pend.res;
	out->cpu_hint = t->cpu_hint;
	out->hint_kind = t->hint_kind;
	out->pending = t->pend.kind == PENDING_RUN	     ? WAVE_SCHED_RUN
		       : t->pend.kind == PENDING_PRESTAGE ? WAVE_SCHED_PRESTAGE
							  : 0;
}

/* Shared by the state and the decisions (sched_state.c). */
void sched_cpu_update_free(struct wave_sched_state *st, uint32_t cpu);
int sched_cpu_find_free(const struct wave_sched_state *st, uint32_t from);
/* Frees the CPU of @t's pending decision, if it still holds @t. */
void sched_task_clear_pending(struct wave_sched_state *st, struct sched_task *t);

/* wave_sched_state_create(), its task table made with room for @tasks
 * (a guess: more only grow it, as usual), or taken from @kept (NULL, or a
 * table a state's tasks were moved into, sched_state_take_tasks()) when
 * that has the room: emptied, its slots not allocated and zeroed again. */
int sched_state_create(uint32_t n_cpus, size_t tasks, struct u64map *kept,
		       struct wave_sched_state **out);
/* Moves @st's task table into @out (which must hold none), emptied, for a
 * later sched_state_create(); @st is left without one, only to be
 * destroyed. */
void sched_state_take_tasks(struct wave_sched_state *st, struct u64map *out);

/* wave_sched_state_apply() without its checks of the caller's arguments,
 * for the agent's own calls: @st and @m are not NULL, @ctx is NULL or the
 * context made on @st (every byte of the message is still checked). */
int sched_state_apply(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
		      const struct wave_msg *m);

/* Checks every invariant linking tasks and CPUs; 0 or -EPROTO. For tests
 * and the fuzzer (not exported from libwave.so). */
int wave_sched_state_check(const struct wave_sched_state *st);

#endif /* WAVE_SCHED_IMPL_H */
