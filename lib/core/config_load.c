/* SPDX-License-Identifier: MIT */
/*
 * Reading a configuration file for wave_config_parse().
 *
 * The path comes from an operator and is read again on every reload, so
 * nothing here may block: a FIFO would hold open() until a writer came (and
 * a daemon's reload with it, deaf to SIGTERM), a device could be read for
 * ever. The file is opened without blocking and refused unless it is a
 * regular file.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "config_impl.h"

/* What @mode is, for "is a FIFO; ...". */
static const char *file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	return "not a regular file";
}

/* Reads all of @fd (at most WAVE_CONFIG_MAX_BYTES) into a new buffer. */
static int read_all(int fd, const char *path, char **buf, size_t *len, struct wave_error *err)
{
	struct stat st;
	size_t got = 0;

	if (fstat(fd, &st) < 0)
		return wave_error_set(err, -WAVE_ECONFIG, path, 0, 0, "cannot stat: %s",
				      wave_strerror(errno));
	if (!S_ISREG(st.st_mode))
		return wave_error_set(err, -WAVE_ECONFIG, path, 0, 0,
				      "is %s; a configuration must be a regular file",
				      file_kind(st.st_mode));
	if (st.st_size > (off_t)WAVE_CONFIG_MAX_BYTES)
		return wave_error_set(err, -WAVE_ECONFIG, path, 0, 0,
				      "file is larger than %u bytes", WAVE_CONFIG_MAX_BYTES);
	if (!(*buf = wave_cfg_malloc((size_t)st.st_size + 1)))
		return wave_error_set(err, -ENOMEM, path, 0, 0, "out of memory");
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, *buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the file shrank, or failed: parse what we have */
		got += (size_t)n;
	}
	*len = got;
	return 0;
}

WAVE_API int wave_config_load(const char *path, struct wave_config **out, struct wave_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	int fd, ret;

	wave_error_clear(err);
	if (!path || !out)
		return wave_error_set(err, -EINVAL, path ? path : "", 0, 0, "invalid argument");
	/* O_NONBLOCK: see above; it changes nothing for a regular file. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return wave_error_set(err, -WAVE_ECONFIG, path, 0, 0, "cannot open: %s",
				      wave_strerror(errno));
	ret = read_all(fd, path, &buf, &len, err);
	close(fd);
	if (ret == 0)
		ret = wave_config_parse(buf, len, path, out, err);
	wave_cfg_free(buf);
	return ret;
}
