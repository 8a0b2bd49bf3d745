/* SPDX-License-Identifier: MIT */
/*
 * file:// : a channel over a mapped file or device window. The end with
 * WAVE_CHAN_F_CREATE lays the memory out and marks it ready; the other end
 * waits for the ready word, checks a private copy of the header and maps
 * the rest. There is no socket: the doorbell is a futex word in the mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/atomic.h"
#include "../core/core.h"
#include "shm.h"

static int map_shared(int fd, size_t len, void **out)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

static int file_create(const char *path, const struct wave_chan_opts *o, struct wave_chan **out)
{
	size_t need = wave_shm_layout_size(o->host_to_agent_slots, o->agent_to_host_slots,
					   o->mailboxes);
	struct wave_shm_header h;
	struct stat st;
	void *map = NULL; /* gcc -O2 cannot see map_shared() set it */
	int fd, ret;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = fstat(fd, &st) < 0 ? -errno : 0;
	if (ret == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size < need)
		ret = ftruncate(fd, (off_t)need) < 0 ? -errno : 0;
	else if (ret == 0 && !S_ISREG(st.st_mode) && (size_t)st.st_size < need)
		ret = -WAVE_ELAYOUT; /* a device window too small for the rings */
	if (ret == 0)
		ret = map_shared(fd, need, &map);
	close(fd);
	if (ret < 0) {
		wave_warn("file channel %s: cannot create: %s", path, wave_strerror(ret));
		return ret;
	}
	wave_store_relaxed(&((struct wave_shm_header *)map)->ready, 0);
	memset(map, 0, need);
	wave_shm_layout_init(map, o->host_to_agent_slots, o->agent_to_host_slots, o->mailboxes);
	memcpy(&h, map, sizeof(h));
	/* Pairs with the load_acquire in file_attach(): the layout is complete
	 * before the peer can see it ready. */
	if (o->flags & WAVE_CHAN_F_WC)
		wave_fence_wc();
	wave_store_release(&((struct wave_shm_header *)map)->ready, WAVE_SHM_READY);
	return wave_shm_chan_new(map, need, &h, o, o->role,
				 (struct wave_shm_doorbell){ -1, -1, -1 }, out);
}

/* Maps the first page of @path and copies its header once it is ready.
 * Returns 0, 1 to try again later, or an error. */
static int file_peek_header(const char *path, struct wave_shm_header *h, size_t *file_len)
{
	struct stat st;
	void *map = NULL; /* gcc -O2 cannot see map_shared() set it */
	int fd, ret;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 1 : -errno;
	ret = fstat(fd, &st) < 0 ? -errno : 0;
	if (ret == 0 && (size_t)st.st_size < WAVE_SHM_PAGE)
		ret = 1;
	if (ret == 0)
		ret = map_shared(fd, WAVE_SHM_PAGE, &map);
	close(fd);
	if (ret != 0)
		return ret;
	/* Pairs with the store_release of ready in file_create(). */
	if (wave_load_acquire(&((struct wave_shm_header *)map)->ready) == WAVE_SHM_READY) {
		memcpy(h, map, sizeof(*h));
		*file_len = (size_t)st.st_size;
	} else {
		ret = 1;
	}
	munmap(map, WAVE_SHM_PAGE);
	return ret;
}

static int file_attach(const char *path, const struct wave_chan_opts *o, struct wave_chan **out)
{
	uint64_t deadline = o->timeout_ms < 0 ? UINT64_MAX
					      : wave_now_ns() + (uint64_t)o->timeout_ms * 1000000u;
	struct wave_shm_header h;
	size_t file_len = 0;
	void *map = NULL; /* gcc -O2 cannot see map_shared() set it */
	int fd, ret;

	while ((ret = file_peek_header(path, &h, &file_len)) == 1) {
		if (wave_now_ns() >= deadline)
			return -ETIMEDOUT;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	if (ret == 0)
		ret = wave_shm_layout_check(&h, file_len, WAVE_CHAN_MAX_SLOTS);
	if (ret < 0) {
		wave_warn("file channel %s: %s", path, wave_strerror(ret));
		return ret;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = map_shared(fd, h.total_size, &map);
	close(fd);
	if (ret < 0)
		return ret;
	return wave_shm_chan_new(map, h.total_size, &h, o, o->role,
				 (struct wave_shm_doorbell){ -1, -1, -1 }, out);
}

static int file_open(const char *path, const struct wave_chan_opts *o, struct wave_chan **out)
{
	if (path[0] != '/')
		return -WAVE_EURI;
	return (o->flags & WAVE_CHAN_F_CREATE) ? file_create(path, o, out)
					       : file_attach(path, o, out);
}

const struct wave_transport wave_transport_file = {
	.scheme = "file",
	.open = file_open,
	.listen = NULL,
};
