/* SPDX-License-Identifier: MIT */
/*
 * The memory-ordering vocabulary used on every shared-memory path. Each use
 * site names the access it pairs with. Built on C11 <stdatomic.h>; no
 * volatile is used for synchronisation anywhere in libwave.
 */
#ifndef WAVE_CORE_ATOMIC_H
#define WAVE_CORE_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "shared-memory atomics must be lock-free");
_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t), "atomic u32 has the plain layout");

/* ThreadSanitizer does not model stand-alone fences (gcc rejects them under
 * -fsanitize=thread with -Wtsan). A TSan build therefore makes every access
 * below sequentially consistent and turns the fences into compiler barriers:
 * strictly stronger than the fence-based ordering of a normal build, and
 * expressed in accesses TSan understands, so it still checks that every
 * shared access is ordered by one of these. */
#if defined(__SANITIZE_THREAD__)
#define WAVE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WAVE_TSAN 1
#endif
#endif

#ifdef WAVE_TSAN
#define wave_load_acquire(p) atomic_load_explicit((p), memory_order_seq_cst)
#define wave_load_relaxed(p) atomic_load_explicit((p), memory_order_seq_cst)
#define wave_store_release(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#define wave_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#define wave_fence_release() atomic_signal_fence(memory_order_seq_cst)
#define wave_fence_seq_cst() atomic_signal_fence(memory_order_seq_cst)
#else
#define wave_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define wave_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define wave_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define wave_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define wave_fence_release() atomic_thread_fence(memory_order_release)
#define wave_fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)
#endif

/* Order earlier stores before later ones also on write-combining mappings
 * (a PCIe BAR mapped _wc), where a release fence is not enough on x86. */
static inline void wave_fence_wc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("sfence" ::: "memory");
#else
	wave_fence_seq_cst();
#endif
}

/* Stores the 64-byte line at @src into the line-aligned @dst without first
 * taking the line into this CPU's cache (a non-temporal store, x86-64:
 * movntdq). For a ring whose lines another CPU reads after this one writes
 * them: a plain store would wait for every line to come back from the
 * reader's cache (a read for ownership: tens of ns between a VM's vCPUs)
 * before writing it; this one is posted. The stores are weakly ordered: wave_fence_wc()
 * before the release that publishes them. Elsewhere a plain copy. */
static inline void wave_store_line_nt(void *dst, const void *src)
{
#if defined(__x86_64__)
	const __m128i *s = src;
	__m128i *d = dst;

	for (int i = 0; i < 4; i++)
		_mm_stream_si128(d + i, _mm_loadu_si128(s + i));
#else
	__builtin_memcpy(dst, src, 64);
#endif
}

/* Spin-wait hint. */
static inline void wave_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

#endif /* WAVE_CORE_ATOMIC_H */
