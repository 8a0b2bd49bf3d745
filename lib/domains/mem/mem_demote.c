/* SPDX-License-Identifier: MIT */
/*
 * The demoter: a thread that keeps m->reserve bytes free under the
 * capacity of every limited tier that has a slower one, as the kernel's
 * kswapd keeps its watermarks. Without it the fault thread, having brought
 * a far chunk back into a full tier, demotes a victim (copies, compresses,
 * write-protects and releases it) before it reads the next fault: every
 * fault waited for a demotion. With it a fault takes reserve room, and the
 * demotions that give it back run here, on another CPU when the options
 * name one (wave_mem_opts.demote_cpu).
 *
 * Watermarks. The demoter sleeps until a tier has less than half the
 * reserve free (mem_demoter_kick(), called by whoever made a tier take
 * room), then demotes until the whole reserve is free again: one wake-up
 * per half reserve of faults, not one per fault. Its demotions are the
 * same transactions as any relief (mem_relieve_locked(): the agent's
 * prestaged victims first, then the CLOCK), so a chunk is in one place
 * and a full store is backpressure here as anywhere. When nothing can go
 * (every candidate busy, fresh or refused by a full store) it retries
 * after STUCK_NS instead of spinning; the fault thread still relieves a
 * tier that goes over its capacity meanwhile.
 *
 * It holds the region table's read lock for BATCH demotions at a time, so
 * an unregistration waits for a batch, not for a whole refill.
 *
 * No wake-up is lost: the demoter says it sleeps (demoter_asleep, under
 * dlock) before it looks at the tiers a last time, and a kicker reads
 * demoter_asleep after its tier took room (all sequentially consistent):
 * one of the two sees the other's write.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "../../core/core.h"
#include "mem_impl.h"

#define BATCH 16
#define STUCK_NS 10000000L

bool mem_reserve_low(struct wave_mem *m)
{
	for (uint32_t t = 0; t + 1 < m->n_tiers; t++)
		if (mem_tier_over(m, t, m->reserve / 2))
			return true;
	return false;
}

/* Does any tier have less than the whole reserve free? */
static bool reserve_short(struct wave_mem *m)
{
	for (uint32_t t = 0; t + 1 < m->n_tiers; t++)
		if (mem_tier_over(m, t, m->reserve))
			return true;
	return false;
}

void mem_demoter_kick(struct wave_mem *m)
{
	if (!m->reserve || !atomic_load(&m->demoter_asleep) || !mem_reserve_low(m))
		return;
	pthread_mutex_lock(&m->dlock);
	pthread_cond_signal(&m->dcond);
	pthread_mutex_unlock(&m->dlock);
}

/* Sleeps until kicked (the reserve half gone) or stopped; @stuck: nothing
 * could go, so kicks are not wanted, only a retry after STUCK_NS. */
static void demoter_wait(struct wave_mem *m, bool stuck)
{
	pthread_mutex_lock(&m->dlock);
	if (stuck) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += STUCK_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!atomic_load(&m->demoter_stop))
			pthread_cond_timedwait(&m->dcond, &m->dlock, &ts);
	} else {
		atomic_store(&m->demoter_asleep, true);
		while (!atomic_load(&m->demoter_stop) && !mem_reserve_low(m))
			pthread_cond_wait(&m->dcond, &m->dlock);
		atomic_store(&m->demoter_asleep, false);
	}
	pthread_mutex_unlock(&m->dlock);
}

static void *demoter_thread(void *arg)
{
	struct wave_mem *m = arg;

	while (!atomic_load(&m->demoter_stop)) {
		int n = 0;

		if (reserve_short(m)) {
			pthread_rwlock_rdlock(&m->rlock);
			n = mem_relieve_locked(m, m->reserve, BATCH);
			pthread_rwlock_unlock(&m->rlock);
			if (n > 0)
				continue;
		}
		demoter_wait(m, reserve_short(m));
	}
	return NULL;
}

void mem_demoter_init(struct wave_mem *m)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->dcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&m->dlock, NULL);
}

void mem_demoter_fini(struct wave_mem *m)
{
	pthread_cond_destroy(&m->dcond);
	pthread_mutex_destroy(&m->dlock);
}

int mem_demoter_start(struct wave_mem *m, struct wave_error *err)
{
	pthread_attr_t a;
	int ret;

	pthread_attr_init(&a);
	if (m->demote_cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(m->demote_cpu, &set);
		pthread_attr_setaffinity_np(&a, sizeof(set), &set);
	}
	ret = pthread_create(&m->demoter, &a, demoter_thread, m);
	pthread_attr_destroy(&a);
	if (ret)
		return wave_error_set(err, -ret, "mem", 0, 0,
				      "cannot start the demoter thread on CPU %d: %s",
				      m->demote_cpu, wave_strerror(ret));
	m->demoter_on = true;
	return 0;
}

void mem_demoter_stop(struct wave_mem *m)
{
	if (!m->demoter_on)
		return;
	pthread_mutex_lock(&m->dlock);
	atomic_store(&m->demoter_stop, true);
	pthread_cond_broadcast(&m->dcond);
	pthread_mutex_unlock(&m->dlock);
	pthread_join(m->demoter, NULL);
	m->demoter_on = false;
}
