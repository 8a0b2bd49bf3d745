/* SPDX-License-Identifier: MIT */
/*
 * Faults served by the faulting thread (wave_mem_opts.fault_signal): the
 * SIGBUS handler is installed while such a manager lives and the previous
 * disposition put back after; a far fault reaches the thread as SIGBUS (a
 * handler installed later that chains sees it; a thread that blocks it
 * dies of it, as mem.h says); a SIGBUS that is not the library's goes to
 * the previous handler, or kills the process under the default; the
 * options are checked. The far tier's suites run in this mode too
 * (check_mem_far_signal, check_mem_reserve_signal,
 * check_mem_agentd_signal).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "mem_util.h"

#define CHUNK (16 * KIB)

static struct wave_mem *signal_mem(void)
{
	struct wave_mem_opts o;
	struct wave_error err;
	struct wave_mem *m = NULL;
	int ret;

	mem_far_opts(&o, 0, 0);
	o.fault_signal = 1;
	ret = wave_mem_create(&o, &m, &err);
	ck_assert_msg(ret == 0, "wave_mem_create: %d %s", ret, err.text);
	return m;
}

/* A registered region of @len bytes at *@p, filled, chunk 0 demoted. */
static uint32_t far_region(struct wave_mem *m, size_t len, uint64_t **p)
{
	struct wave_mem_region_opts ro;
	uint32_t id;

	wave_mem_region_opts_init(&ro);
	ro.chunk_size = CHUNK;
	*p = anon_map(len);
	ck_assert_int_eq(wave_mem_region_register(m, *p, len, &ro, &id), 0);
	fill_pattern(*p, len, 3);
	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, 0), 1), WAVE_COMMITTED);
	return id;
}

static void (*handler_of_sigbus(void))(int, siginfo_t *, void *)
{
	struct sigaction sa;

	ck_assert_int_eq(sigaction(SIGBUS, NULL, &sa), 0);
	return (sa.sa_flags & SA_SIGINFO) ? sa.sa_sigaction : NULL;
}

/* ---- a handler of the test's, before or after the library's ---------------- */

static struct sigaction lib_sa; /* what was there when ours went in */
static _Atomic int seen;
static sigjmp_buf out;

/* Installed before the manager: gets what is not the library's, and
 * jumps out of the access (a bus error of a file's page past its end). */
static void before(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	atomic_fetch_add(&seen, 1);
	siglongjmp(out, 1);
}

/* Installed after the manager: counts, then chains to the library's. */
static void after(int sig, siginfo_t *si, void *uc)
{
	atomic_fetch_add(&seen, 1);
	lib_sa.sa_sigaction(sig, si, uc);
}

static void install(void (*fn)(int, siginfo_t *, void *), struct sigaction *old)
{
	struct sigaction sa = { .sa_sigaction = fn, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGBUS, &sa, old), 0);
}

/* A page of a file past its end: any access raises SIGBUS (BUS_ADRERR),
 * like a userfaultfd's, but the library's handler must pass it on. */
static volatile char *past_eof(void)
{
	char path[] = "/tmp/check_mem_signal.XXXXXX";
	int fd = mkstemp(path);
	void *p;

	ck_assert_int_ge(fd, 0);
	unlink(path);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	ck_assert_ptr_ne(p, MAP_FAILED);
	return p;
}

/* The handler goes in with the first manager and out with the last; a
 * SIGBUS not of the library's reaches the handler that was there before. */
START_TEST(t_chain_before)
{
	volatile char *bad = past_eof();
	struct wave_mem *m1, *m2;
	uint64_t *p;
	uint32_t id;

	install(before, NULL);
	m1 = signal_mem();
	m2 = signal_mem();
	ck_assert(handler_of_sigbus() != before);
	id = far_region(m2, 4 * CHUNK, &p);
	ck_assert_int_eq(check_pattern(p, 4 * CHUNK, 3), -1); /* served, not passed on */
	ck_assert_int_eq(atomic_load(&seen), 0);
	if (!sigsetjmp(out, 1))
		(void)bad[0];
	ck_assert_int_eq(atomic_load(&seen), 1);
	wave_mem_destroy(m1);
	ck_assert(handler_of_sigbus() != before); /* m2 still needs it */
	ck_assert_int_eq(wave_mem_region_unregister(m2, id), 0);
	wave_mem_destroy(m2);
	ck_assert(handler_of_sigbus() == before);
	munmap(p, 4 * CHUNK);
}
END_TEST

/* A far fault is a SIGBUS to the faulting thread: a handler installed
 * after the library's, chaining to it, sees one per far chunk touched, and
 * every byte comes back. The library leaves a handler not its own in
 * place. */
START_TEST(t_chain_after)
{
	struct wave_mem *m = signal_mem();
	struct wave_mem_stats st;
	uint64_t *p;
	uint32_t id = far_region(m, 4 * CHUNK, &p);

	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, 2), 1), WAVE_COMMITTED);
	install(after, &lib_sa);
	ck_assert(lib_sa.sa_flags & SA_SIGINFO);
	ck_assert_int_eq(check_pattern(p, 4 * CHUNK, 3), -1);
	ck_assert_int_ge(atomic_load(&seen), 2);
	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	ck_assert_uint_eq(st.far_faults, 2);
	wave_mem_destroy(m);
	ck_assert(handler_of_sigbus() == after);
	munmap(p, 4 * CHUNK);
}
END_TEST

/* Runs @fn in a child and returns its wait status. */
static int in_child(void (*fn)(void))
{
	int status;
	pid_t pid = test_fork();
	if (pid == 0) {
		fn();
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static void touch_far_blocked(void)
{
	struct wave_mem *m = signal_mem();
	sigset_t bus;
	uint64_t *p;

	far_region(m, 4 * CHUNK, &p);
	sigemptyset(&bus);
	sigaddset(&bus, SIGBUS);
	pthread_sigmask(SIG_BLOCK, &bus, NULL);
	(void)((volatile uint64_t *)p)[1];
}

/* The default disposition first: a library of the process may have put
 * a handler there already (libfabric's psm provider does). */
static void bus_error_default(void)
{
	volatile char *bad = past_eof();

	signal(SIGBUS, SIG_DFL);
	signal_mem();
	(void)bad[0];
}

/* A thread that blocks SIGBUS and touches a far chunk dies of it (the
 * kernel's rule, mem.h): proof that the fault reached it as a signal. And
 * a bus error that is not the library's, under the default disposition,
 * still kills the process (not an endless retry). */
START_TEST(t_default_dies)
{
	int st = in_child(touch_far_blocked);

	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS, "status %#x", st);
	st = in_child(bus_error_default);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS, "status %#x", st);
}
END_TEST

START_TEST(t_opts)
{
	struct wave_mem_opts o;
	struct wave_mem *m[9] = { NULL };
	struct wave_error err;
	void (*was)(int, siginfo_t *, void *) = handler_of_sigbus();

	mem_far_opts(&o, 0, 0);
	o.fault_signal = 2;
	ck_assert_int_eq(wave_mem_create(&o, &m[0], &err), -EINVAL);
	o.fault_signal = 1;
	o.codec = WAVE_MEM_CODEC_ZSTD;
	ck_assert_int_eq(wave_mem_create(&o, &m[0], &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.text, "zstd"));
	o.codec = WAVE_MEM_CODEC_NONE;
	for (int k = 0; k < 8; k++)
		ck_assert_int_eq(wave_mem_create(&o, &m[k], &err), 0);
	ck_assert_int_eq(wave_mem_create(&o, &m[8], &err), -EBUSY);
	ck_assert_ptr_null(m[8]);
	wave_mem_destroy(m[3]);
	ck_assert_int_eq(wave_mem_create(&o, &m[3], &err), 0); /* its place again */
	ck_assert(handler_of_sigbus() != was);
	for (int k = 0; k < 8; k++)
		wave_mem_destroy(m[k]);
	ck_assert(handler_of_sigbus() == was);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mem_signal");
	TCase *tc = tcase_create("signal");

	tcase_add_test(tc, t_chain_before);
	tcase_add_test(tc, t_chain_after);
	tcase_add_test(tc, t_default_dies);
	tcase_add_test(tc, t_opts);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
