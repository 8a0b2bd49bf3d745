/* SPDX-License-Identifier: MIT */
/* Writing decision traces (trace.h): headers, blocks, the size cap and
 * rotation. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../core/core.h"
#include "../core/crc32c.h"
#include "../core/le.h"
#include "trace.h"

/* The header of @m into @out (TRACE_HDR_FIXED + strings + setup + crc
 * bytes, at most trace_hdr_max()). Return: its length. */
static size_t hdr_encode(const struct trace_meta *m, uint8_t *out)
{
	size_t plug = strlen(m->plugin), par = m->params ? strlen(m->params) : 0;
	uint8_t *p = out + TRACE_HDR_FIXED;
	size_t len;

	memcpy(out, TRACE_MAGIC, 8);
	wave_put_le16(out + 8, TRACE_MAJOR);
	wave_put_le16(out + 10, TRACE_MINOR);
	wave_put_le32(out + 16, m->domain);
	wave_put_le32(out + 20, 0);
	wave_put_le64(out + 24, m->host_id);
	wave_put_le64(out + 32, m->start_ns);
	wave_put_le16(out + 40, (uint16_t)plug);
	wave_put_le16(out + 42, (uint16_t)m->n_setup);
	wave_put_le32(out + 44, (uint32_t)par);
	memcpy(p, m->plugin, plug);
	p += plug;
	if (par)
		memcpy(p, m->params, par);
	p += par;
	for (unsigned i = 0; i < m->n_setup; i++, p += 4 + WAVE_MSG_PAYLOAD) {
		wave_put_le16(p, m->setup[i].type);
		wave_put_le16(p + 2, m->setup[i].flags);
		memcpy(p + 4, m->setup[i].payload.u8, WAVE_MSG_PAYLOAD);
	}
	len = (size_t)(p - out) + 4;
	wave_put_le32(out + 12, (uint32_t)len);
	wave_put_le32(p, wave_crc32c(0, out, len - 4));
	return len;
}

static size_t hdr_max(void)
{
	return TRACE_HDR_FIXED + TRACE_PLUGIN_MAX + TRACE_PARAMS_MAX +
	       TRACE_SETUP_MAX * (4 + WAVE_MSG_PAYLOAD) + 4;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t r;

	while (len) {
		r = write(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* Creates the current file and writes its header. */
static int file_start(struct trace_writer *w)
{
	uint8_t *hdr = malloc(hdr_max());
	size_t len;
	int ret;

	if (!hdr)
		return -ENOMEM;
	w->fd = open(w->o.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		free(hdr);
		return -errno;
	}
	len = hdr_encode(&w->meta, hdr);
	ret = write_all(w->fd, hdr, len);
	w->file_bytes = len;
	w->files++;
	free(hdr);
	return ret;
}

/* path.N-1 -> path.N, ..., path -> path.1: the oldest goes. */
static int rotate(struct trace_writer *w)
{
	size_t len = strlen(w->o.path) + 16;
	char *from = malloc(len), *to = malloc(len);
	int ret = 0;

	if (!from || !to) {
		free(from);
		free(to);
		return -ENOMEM;
	}
	for (unsigned k = w->o.rotate; k >= 1 && ret == 0; k--) {
		if (k == 1)
			snprintf(from, len, "%s", w->o.path);
		else
			snprintf(from, len, "%s.%u", w->o.path, k - 1);
		snprintf(to, len, "%s.%u", w->o.path, k);
		if (rename(from, to) < 0 && errno != ENOENT)
			ret = -errno;
	}
	free(from);
	free(to);
	return ret;
}

static void stop(struct trace_writer *w, const char *why)
{
	w->stopped = true;
	wave_warn("trace %s: recording stopped: %s", w->o.path, why);
}

int trace_writer_flush(struct trace_writer *w)
{
	uint8_t *h;
	size_t len;
	uint32_t crc;
	int ret;

	if (!w || w->stopped || (w->n == 0 && w->lost == 0))
		return 0;
	/* Records lost at the end still get a block (an empty one) to say so. */
	if (w->n == 0)
		w->base_ns = w->last_ns;
	h = w->buf;
	len = TRACE_BLK_HDR + w->len;
	if (w->file_bytes + len > w->o.max_bytes) {
		close(w->fd);
		w->fd = -1;
		if (w->o.rotate == 0) {
			stop(w, "size cap reached");
			w->dropped += w->n;
			w->n = w->len = 0;
			return 0;
		}
		w->meta.start_ns = w->base_ns;
		if ((ret = rotate(w)) < 0 || (ret = file_start(w)) < 0) {
			stop(w, wave_strerror(ret));
			return ret;
		}
	}
	wave_put_le32(h, TRACE_BLOCK_MAGIC);
	wave_put_le32(h + 4, w->len);
	wave_put_le32(h + 8, w->n);
	wave_put_le64(h + 16, w->base_ns);
	wave_put_le64(h + 24, w->lost);
	crc = wave_crc32c(0, h, 12);
	crc = wave_crc32c(crc, h + 16, TRACE_BLK_HDR - 16 + w->len);
	wave_put_le32(h + 12, crc);
	if ((ret = write_all(w->fd, h, len)) < 0) {
		stop(w, wave_strerror(ret));
		w->dropped += w->n;
	}
	w->file_bytes += len;
	w->n = w->len = 0;
	w->lost = 0;
	return ret;
}

void trace_writer_lost(struct trace_writer *w, uint64_t n)
{
	if (!w || !n)
		return;
	trace_writer_flush(w);
	if (w->stopped)
		w->dropped += n;
	else
		w->lost += n; /* in the next block's header */
}

static int meta_copy(struct trace_meta *dst, const struct trace_meta *src)
{
	*dst = *src;
	dst->params = NULL;
	if (src->params && !(dst->params = strdup(src->params)))
		return -ENOMEM;
	return 0;
}

static int meta_check(const struct trace_writer_opts *o, const struct trace_meta *m)
{
	if (!o->path || o->rotate > 1000 || o->max_bytes < 4ull * TRACE_BLOCK_BYTES)
		return -EINVAL;
	if (strnlen(m->plugin, sizeof(m->plugin)) > TRACE_PLUGIN_MAX ||
	    m->n_setup > TRACE_SETUP_MAX || (m->params && strlen(m->params) > TRACE_PARAMS_MAX))
		return -EINVAL;
	return 0;
}

int trace_writer_open(const struct trace_writer_opts *o, const struct trace_meta *meta,
		      struct trace_writer **out, struct wave_error *err)
{
	struct trace_writer *w;
	int ret;

	wave_error_clear(err);
	if (!o || !meta || !out || meta_check(o, meta) < 0)
		return wave_error_set(err, -EINVAL, "trace", 0, 0, "invalid argument");
	if (!(w = calloc(1, sizeof(*w))) || !(w->buf = malloc(TRACE_BLK_HDR + TRACE_BLOCK_BYTES)) ||
	    !(w->o.path = strdup(o->path)) || meta_copy(&w->meta, meta) < 0) {
		trace_writer_close(w);
		return wave_error_set(err, -ENOMEM, "trace", 0, 0, "out of memory");
	}
	w->o.max_bytes = o->max_bytes;
	w->o.rotate = o->rotate;
	w->fd = -1;
	/* A file of the same name is kept as an older one when rotating. */
	if ((o->rotate && (ret = rotate(w)) < 0) || (ret = file_start(w)) < 0) {
		wave_error_set(err, ret, o->path, 0, 0, "cannot write: %s", wave_strerror(ret));
		trace_writer_close(w);
		return ret;
	}
	*out = w;
	return 0;
}

void trace_writer_set_setup(struct trace_writer *w, const struct wave_msg *m, unsigned n)
{
	if (!w || n > TRACE_SETUP_MAX)
		return;
	memcpy(w->meta.setup, m, n * sizeof(*m));
	w->meta.n_setup = n;
}

void trace_writer_close(struct trace_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0) {
		trace_writer_flush(w);
		close(w->fd);
	}
	if (w->dropped)
		wave_warn("trace %s: %llu records not written", w->o.path,
			  (unsigned long long)w->dropped);
	free((char *)w->o.path);
	free(w->meta.params);
	free(w->buf);
	free(w);
}

const char *trace_kind_name(enum trace_kind k)
{
	static const char *const names[TRACE_KIND_COUNT] = { "event", "decision", "dropped",
							     "tick" };

	return (unsigned)k < TRACE_KIND_COUNT ? names[k] : "?";
}
