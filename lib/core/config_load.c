/* SPDX-License-Identifier: MIT */
/*
 * Reading a configuration file for wave_config_parse(), freeing a parsed
 * one, and turning it into channel options.
 *
 * The path comes from an operator and is read again on every reload, so
 * nothing here may block: a FIFO would hold open() until a writer came (and
 * a daemon's reload with it, deaf to SIGTERM), a device could be read for
 * ever. The file is opened without blocking and refused unless it is a
 * regular file.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
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
	size_t got = 0, cap;

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
	/* A file that says it is empty may not be (/proc, /sys): read it to
	 * its end, up to one byte past the limit. */
	cap = st.st_size > 0 ? (size_t)st.st_size : WAVE_CONFIG_MAX_BYTES + 1u;
	if (!(*buf = wave_cfg_malloc(cap + 1)))
		return wave_error_set(err, -ENOMEM, path, 0, 0, "out of memory");
	while (got < cap) {
		ssize_t n = read(fd, *buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) { /* not a short file: a part of it would mislead */
			int e = errno;

			wave_cfg_free(*buf);
			*buf = NULL;
			return wave_error_set(err, -WAVE_ECONFIG, path, 0, 0, "cannot read: %s",
					      wave_strerror(e));
		}
		if (n == 0)
			break; /* the file shrank: parse what it holds */
		got += (size_t)n;
	}
	if (got > WAVE_CONFIG_MAX_BYTES) {
		wave_cfg_free(*buf);
		*buf = NULL;
		return wave_error_set(err, -WAVE_ECONFIG, path, 0, 0,
				      "file is larger than %u bytes", WAVE_CONFIG_MAX_BYTES);
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
	if (!*path)
		return wave_error_set(err, -WAVE_ECONFIG, "\"\"", 0, 0,
				      "an empty file name names no configuration");
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

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		wave_cfg_free(v[i]);
	wave_cfg_free(v);
}

WAVE_API void wave_config_free(struct wave_config *cfg)
{
	if (!cfg)
		return;
	wave_cfg_free(cfg->source);
	free_strings(cfg->listen, cfg->n_listen);
	wave_cfg_free(cfg->cpus);
	wave_cfg_free(cfg->allow_uids);
	wave_cfg_free(cfg->token);
	free_strings(cfg->plugin_path, cfg->n_plugin_path);
	wave_cfg_free(cfg->stats_socket);
	wave_cfg_free(cfg->metrics_address);
	wave_cfg_free(cfg->record.path);
	for (int i = 0; i < WAVE_DOMAIN_COUNT; i++) {
		wave_cfg_free(cfg->domains[i].plugin);
		wave_params_free(cfg->domains[i].params);
	}
	wave_cfg_free(cfg);
}

WAVE_API int wave_config_chan_opts(const struct wave_config *cfg, struct wave_chan_opts *opts)
{
	if (!cfg || !opts)
		return -EINVAL;
	wave_chan_opts_init(opts);
	opts->host_to_agent_slots = cfg->host_to_agent_slots;
	opts->agent_to_host_slots = cfg->agent_to_host_slots;
	opts->max_slots = cfg->max_slots;
	opts->delay_ns = cfg->delay_ns;
	opts->spin_ns = cfg->spin_ns;
	opts->allow_uids = cfg->allow_uids;
	opts->n_allow_uids = cfg->n_allow_uids;
	/* fabric:// checks it in its hello (the only check it has); the
	 * parser kept it within WAVE_CHAN_TOKEN_MAX whenever a fabric://
	 * listener is configured. A longer one is for the session only. */
	if (cfg->token && strlen(cfg->token) <= WAVE_CHAN_TOKEN_MAX)
		opts->token = cfg->token;
	return 0;
}
