/* SPDX-License-Identifier: MIT */
/* Shared-memory channels: the channel object (shm.c) and its two ways of
 * getting the memory: a Unix-socket rendezvous with a memfd (shm_sock.c) and
 * a mapped file or device (file.c). */
#ifndef WAVE_SHM_H
#define WAVE_SHM_H

#include <stdbool.h>
#include <stddef.h>

#include "chan_impl.h"
#include "ring.h"
#include "shm_layout.h"

/* How a side is woken: eventfds passed over the rendezvous socket, or a
 * futex word in the mapping (file:// has no socket to pass fds over). */
struct wave_shm_doorbell {
	int sock;    /* rendezvous socket kept open as a liveness signal, or -1 */
	int my_efd;  /* eventfd the peer writes to wake us, or -1 for futex */
	int peer_efd;/* eventfd we write to wake the peer, or -1 for futex */
};

/* The size of a layout, in bytes, for the given ring sizes and mailboxes. */
size_t wave_shm_layout_size(uint32_t h2a_slots, uint32_t a2h_slots, uint32_t n_mbox);

/* Lays out a zeroed region of wave_shm_layout_size() bytes at @base. The
 * ready word is not set. */
void wave_shm_layout_init(void *base, uint32_t h2a_slots, uint32_t a2h_slots, uint32_t n_mbox);

/* Checks a private copy of a header against the mapping it came from. */
int wave_shm_layout_check(const struct wave_shm_header *h, size_t map_len, uint32_t max_slots);

/* Places the parts of the layout this side reads on its NUMA node. */
int wave_shm_place(void *base, const struct wave_shm_header *h, enum wave_role role, int node);

/*
 * Makes a channel end over a mapping whose header copy @h was checked. Takes
 * ownership of the mapping and of the doorbell fds (also on failure).
 */
int wave_shm_chan_new(void *map, size_t map_len, const struct wave_shm_header *h,
		      const struct wave_chan_opts *o, enum wave_role role,
		      struct wave_shm_doorbell db, struct wave_chan **out);

/* Test hook (not exported): makes every futex() call fail with EFAULT, as
 * on a PFN-mapped PCIe BAR. */
void wave_shm_test_futex_fault(bool on);

#endif /* WAVE_SHM_H */
