/* SPDX-License-Identifier: MIT */
/*
 * wave-replay: what would another policy have decided on a recorded
 * trace, and would it have done better (docs/trace.md)?
 *
 * Replays a decision trace recorded by the agent into any plugin of its
 * domain, in virtual time and deterministically: the same trace and plugin
 * give the same decisions, byte for byte. Reports where they differ from
 * the recorded ones and the domain's quality figures, from its model of
 * the host (sched: the simulated host of the tests), next to the trace's
 * own; --compare runs two plugins side by side. Exports the trace to the
 * Chrome/Perfetto JSON trace format and to JSON lines.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wave/wave.h>

#include "replay/replay.h"

#define MAX_DIRS 16

struct opts {
	const char *trace, *plugin[2], *params, *decisions, *chrome, *jsonl;
	const char *dirs[MAX_DIRS];
	size_t n_dirs;
	unsigned repeat;
	bool compare, quality;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wave-replay [options] TRACE [PLUGIN]\n"
		"       wave-replay [options] --compare A B TRACE\n"
		"\n"
		"Replays TRACE (recorded by the agent, docs/trace.md) into PLUGIN, a plugin\n"
		"of the trace's domain (a name, or a path containing '/'), in virtual time:\n"
		"prints where its decisions differ from the recorded ones, then quality\n"
		"figures of the trace's workload run by the domain's model of the host\n"
		"against PLUGIN, next to the trace's own. Without PLUGIN: the header, the\n"
		"counts and the trace's own figures.\n"
		"\n"
		"  --compare A B     quality of plugins A and B side by side (no replay)\n"
		"  --params JSON     the plugins' parameters (default: the trace's, for the\n"
		"                    plugin it was recorded with; else none)\n"
		"  --plugin-dir DIR  look for plugins in DIR first (repeatable)\n"
		"  --decisions FILE  write the replayed decisions to FILE, as a trace\n"
		"  --chrome FILE     write the trace as Chrome/Perfetto JSON (ui.perfetto.dev)\n"
		"  --jsonl FILE      write the trace as JSON lines ('-': standard output,\n"
		"                    and the report goes to standard error)\n"
		"  --repeat N        replay N times (a throughput measurement; default 1)\n"
		"  --no-quality      skip the quality figures\n"
		"  -h, --help        this text\n"
		"  --version         the version of libwave\n"
		"\n"
		"Exit status: 0; 1 when the trace or a plugin cannot be used (the reason\n"
		"is printed, with the byte offset for a bad trace); 2 for bad usage.\n");
}

enum { O_COMPARE = 256, O_PARAMS, O_DIR, O_DECISIONS, O_CHROME, O_JSONL, O_REPEAT, O_NOQ,
       O_HELP = 'h', O_VERSION = 512 };

static const struct option long_opts[] = {
	{ "compare", no_argument, NULL, O_COMPARE },
	{ "params", required_argument, NULL, O_PARAMS },
	{ "plugin-dir", required_argument, NULL, O_DIR },
	{ "decisions", required_argument, NULL, O_DECISIONS },
	{ "chrome", required_argument, NULL, O_CHROME },
	{ "jsonl", required_argument, NULL, O_JSONL },
	{ "repeat", required_argument, NULL, O_REPEAT },
	{ "no-quality", no_argument, NULL, O_NOQ },
	{ "help", no_argument, NULL, O_HELP },
	{ "version", no_argument, NULL, O_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* Bad usage: says why. Return: -EINVAL. */
static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("wave-replay: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'wave-replay --help'.\n", stderr);
	return -EINVAL;
}

static int parse_one(int o, struct opts *p)
{
	unsigned long n = 0;
	char *end = NULL;

	switch (o) {
	case O_COMPARE: p->compare = true; return 0;
	case O_PARAMS: p->params = optarg; return 0;
	case O_DIR:
		if (p->n_dirs == MAX_DIRS)
			return bad_usage("at most %d --plugin-dir", MAX_DIRS);
		p->dirs[p->n_dirs++] = optarg;
		return 0;
	case O_DECISIONS: p->decisions = optarg; return 0;
	case O_CHROME: p->chrome = optarg; return 0;
	case O_JSONL: p->jsonl = optarg; return 0;
	case O_REPEAT:
		errno = 0;
		if (optarg[0] >= '0' && optarg[0] <= '9')
			n = strtoul(optarg, &end, 10);
		if (!end || *end || errno || n == 0 || n > 1000000)
			return bad_usage("--repeat: expected an integer from 1 to 1000000, got '%s'",
					 optarg);
		p->repeat = (unsigned)n;
		return 0;
	case O_NOQ: p->quality = false; return 0;
	case O_HELP: return 1;
	case O_VERSION: return 2;
	default: /* getopt said why */
		fputs("Try 'wave-replay --help'.\n", stderr);
		return -EINVAL;
	}
}

/* Whether @a and @b name one existing file. */
static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* Outputs that would overwrite the trace, or each other. */
static int check_outputs(const struct opts *p)
{
	const char *out[3] = { p->decisions, p->chrome,
			       p->jsonl && strcmp(p->jsonl, "-") ? p->jsonl : NULL };
	static const char *const name[3] = { "--decisions", "--chrome", "--jsonl" };

	for (int i = 0; i < 3; i++) {
		if (same_file(out[i], p->trace))
			return bad_usage("%s %s would overwrite the trace", name[i], out[i]);
		for (int j = 0; j < i; j++)
			if (out[i] && out[j] &&
			    (strcmp(out[i], out[j]) == 0 || same_file(out[i], out[j])))
				return bad_usage("%s and %s name one file", name[j], name[i]);
	}
	return 0;
}

/* 0, 1 for --help, 2 for --version, -EINVAL for bad usage (said). */
static int parse_args(int argc, char **argv, struct opts *p)
{
	int o, ret = 0, left;

	memset(p, 0, sizeof(*p));
	p->repeat = 1;
	p->quality = true;
	while (ret == 0 && (o = getopt_long(argc, argv, "h", long_opts, NULL)) != -1)
		ret = parse_one(o, p);
	if (ret)
		return ret;
	left = argc - optind;
	if (p->compare) {
		if (left != 3)
			return bad_usage("--compare takes two plugins and a trace, got %d argument%s",
					 left, left == 1 ? "" : "s");
		p->plugin[0] = argv[optind];
		p->plugin[1] = argv[optind + 1];
		p->trace = argv[optind + 2];
		if (p->decisions)
			return bad_usage("--decisions needs a single plugin, not --compare");
		return check_outputs(p);
	}
	if (left < 1 || left > 2)
		return bad_usage(left ? "too many arguments" : "no trace given");
	p->trace = argv[optind];
	p->plugin[0] = left == 2 ? argv[optind + 1] : NULL;
	if (p->decisions && !p->plugin[0])
		return bad_usage("--decisions needs a plugin to replay into");
	return check_outputs(p);
}

/* ---- plugins ----------------------------------------------------------- */

static int load(const struct opts *o, const struct trace_meta *meta, const char *name,
		struct wave_plugin **p, struct wave_params **params)
{
	struct wave_plugin_load_opts lo;
	struct wave_error err;
	const char *json;
	int ret;

	wave_plugin_load_opts_init(&lo);
	lo.search_path = o->dirs;
	lo.n_search_path = o->n_dirs;
	lo.domain = (int)meta->domain;
	if ((ret = wave_plugin_load(name, &lo, p, &err)) < 0) {
		fprintf(stderr, "wave-replay: %s: %s\n", name, err.text);
		return ret;
	}
	/* The recorded parameters belong to the recorded plugin. */
	json = o->params ? o->params
	       : strcmp(wave_plugin_desc(*p)->name, meta->plugin) == 0 && meta->params[0]
			 ? meta->params
			 : "{}";
	if ((ret = wave_params_parse(json, o->params ? "--params" : "the trace's params", params,
				     &err)) < 0) {
		char text[WAVE_ERROR_TEXT_LENGTH + WAVE_ERROR_SOURCE_LENGTH + 32];

		wave_error_format(&err, text, sizeof(text));
		fprintf(stderr, "wave-replay: %s\n", text);
		wave_plugin_unload(*p);
		*p = NULL; /* run() unloads what load() leaves */
	}
	return ret;
}

/* ---- the trace --------------------------------------------------------- */

static void print_msg(const struct trace_meta *meta, const char *what, enum trace_kind k,
		      const struct wave_msg *m)
{
	const struct replay_model *model = replay_models[meta->domain];
	char buf[512];

	if (model && model->describe && model->describe(meta, m, buf, sizeof(buf)) == 0)
		printf("%s %s {%s}", what, trace_kind_name(k), buf);
	else
		printf("%s %s type 0x%04x", what, trace_kind_name(k), m->type);
}

static int info(struct trace_reader *r, const char *path)
{
	const struct trace_meta *meta = trace_reader_meta(r);
	uint64_t n[TRACE_KIND_COUNT] = { 0 }, first = 0, last = 0, total = 0;
	struct trace_rec rec;
	struct wave_error err;
	int ret;

	trace_reader_rewind(r);
	while ((ret = trace_reader_next(r, &rec, &err)) == 1) {
		if (!total++)
			first = rec.t_ns;
		last = rec.t_ns;
		n[rec.kind]++;
	}
	if (ret < 0) {
		fprintf(stderr, "wave-replay: %s: %s\n", err.source, err.text);
		return ret;
	}
	printf("trace %s: domain %s, host %" PRIu64 ", plugin %s %s, %u setup message%s\n", path,
	       wave_domain_name(meta->domain), meta->host_id, meta->plugin, meta->params,
	       meta->n_setup, meta->n_setup == 1 ? "" : "s");
	printf("  %" PRIu64 " events, %" PRIu64 " decisions, %" PRIu64 " dropped, %" PRIu64
	       " ticks over %.3f ms\n",
	       n[TRACE_EVENT], n[TRACE_DECISION], n[TRACE_DROPPED], n[TRACE_TICK],
	       (double)(last - first) / 1e6);
	if (trace_reader_lost(r))
		printf("  %" PRIu64 " records lost while recording (the agent's trace writer fell "
		       "behind): replay around them is of an incomplete stream\n",
		       trace_reader_lost(r));
	return 0;
}

/* Closes an output file; a write that failed on the way (a full disk)
 * is said here. Return: @ret, or the write's error when @ret is 0. */
static int output_close(FILE *f, const char *path, int ret)
{
	int failed = ferror(f), err = errno;

	if (fclose(f) != 0 || failed) {
		err = failed ? err : errno;
		fprintf(stderr, "wave-replay: %s: %s\n", path, strerror(err ? err : EIO));
		if (ret == 0)
			ret = -(err ? err : EIO);
	}
	return ret;
}

/* With --jsonl -, the lines alone go to standard output (a pipe into jq)
 * and the report to standard error; main() sets this up. */
static FILE *jsonl_stdout;

static int export_jsonl(struct trace_reader *r, const char *path)
{
	const struct trace_meta *meta = trace_reader_meta(r);
	const struct replay_model *model = replay_models[meta->domain];
	FILE *f = strcmp(path, "-") == 0 ? jsonl_stdout : fopen(path, "w");
	struct trace_rec rec;
	struct wave_error err;
	char buf[512];
	int ret;

	if (!f) {
		fprintf(stderr, "wave-replay: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	trace_reader_rewind(r);
	while ((ret = trace_reader_next(r, &rec, &err)) == 1) {
		fprintf(f,
			"{\"t_ns\":%" PRIu64 ",\"kind\":\"%s\",\"type\":%u,\"flags\":%u,"
			"\"payload\":\"",
			rec.t_ns, trace_kind_name(rec.kind), rec.msg.type, rec.msg.flags);
		for (unsigned i = 0; i < WAVE_MSG_PAYLOAD; i++)
			fprintf(f, "%02x", rec.msg.payload.u8[i]);
		fputc('"', f);
		if (model && model->describe &&
		    model->describe(meta, &rec.msg, buf, sizeof(buf)) == 0)
			fprintf(f, ",%s", buf);
		fputs("}\n", f);
	}
	if (ret < 0)
		fprintf(stderr, "wave-replay: %s: %s\n", err.source, err.text);
	if (f == jsonl_stdout)
		return ret; /* checked at the end (stdout_ok()) */
	return output_close(f, path, ret);
}

/* Whether @r holds no record at all: an agent killed before it wrote its
 * first block leaves the header alone (records reach the file about once a
 * second, docs/trace.md), which is an empty trace, not a broken one, even
 * though the host's setup, which the models need, is not in it either. */
static bool no_records(struct trace_reader *r)
{
	struct trace_rec rec;
	bool none;

	trace_reader_rewind(r);
	none = trace_reader_next(r, &rec, NULL) == 0;
	trace_reader_rewind(r);
	return none;
}

static int export_chrome(struct trace_reader *r, const char *path)
{
	const struct trace_meta *meta = trace_reader_meta(r);
	const struct replay_model *model = replay_models[meta->domain];
	struct wave_error err;
	FILE *f;
	int ret;

	if (!model || !model->chrome) {
		fprintf(stderr, "wave-replay: the %s domain has no Chrome export yet\n",
			wave_domain_name(meta->domain));
		return -ENOTSUP;
	}
	if (!(f = fopen(path, "w"))) {
		fprintf(stderr, "wave-replay: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", f);
	ret = no_records(r) ? 0 : model->chrome(r, f, &err);
	fputs("\n]}\n", f);
	if (ret < 0)
		fprintf(stderr, "wave-replay: %s: %s\n", err.source, err.text);
	return output_close(f, path, ret);
}

/* ---- replay and quality ------------------------------------------------ */

static void keep_decision(void *user, enum trace_kind k, uint64_t t, const struct wave_msg *m)
{
	trace_put(user, k, t, m);
}

static int decisions_writer(const char *path, struct trace_reader *r, const char *plugin,
			    struct trace_writer **w)
{
	struct trace_writer_opts wo = { path, 1ull << 40, 0 };
	struct trace_meta m = *trace_reader_meta(r);
	struct wave_error err;
	int ret;

	/* Its start time is the trace's: the same file from the same input.
	 * It holds decisions only: the host's setup, which a recording may
	 * carry as an event, goes into its header, so that it reads as a
	 * trace of that host. */
	snprintf(m.plugin, sizeof(m.plugin), "%s", plugin);
	if (m.n_setup == 0 && replay_find_setup(r, &m.setup[0]) == 0)
		m.n_setup = 1;
	if ((ret = trace_writer_open(&wo, &m, w, &err)) < 0)
		fprintf(stderr, "wave-replay: %s: %s\n", path, err.text);
	return ret;
}

static void print_diffs(const struct trace_meta *meta, const struct replay_result *res)
{
	for (unsigned i = 0; i < res->n_diffs; i++) {
		const struct replay_diff *d = &res->diffs[i];

		printf("  offset %" PRIu64 ": ", d->offset);
		print_msg(meta, "after", TRACE_EVENT, &d->event);
		printf(" (%u recorded, %u replayed)\n    ", d->n_rec, d->n_new);
		if (d->rec.type)
			print_msg(meta, "recorded", d->rec_kind, &d->rec);
		else
			printf("recorded nothing more");
		printf("\n    ");
		if (d->new_.type)
			print_msg(meta, "replayed", d->new_kind, &d->new_);
		else
			printf("replayed nothing more");
		printf("\n");
	}
	if (res->differing_events > res->n_diffs)
		printf("  ... and %" PRIu64 " more\n", res->differing_events - res->n_diffs);
}

static int replay(const struct opts *o, struct trace_reader *r, struct wave_plugin *p,
		  const struct wave_params *params)
{
	const struct trace_meta *meta = trace_reader_meta(r);
	struct trace_writer *w = NULL;
	struct replay_keep kept = { 0 };
	struct replay_result res;
	struct wave_error err;
	double secs = 0;
	int ret = 0;

	if (o->decisions && decisions_writer(o->decisions, r, wave_plugin_desc(p)->name, &w) < 0)
		return -EIO;
#ifdef M_TRIM_THRESHOLD
	/* Each replay frees its state's tables but the task table (kept:
	 * struct replay_keep) and the next makes them again: glibc would give the heap's top back to the kernel after a
	 * replay whenever a large table happened to end there (or map each
	 * table of 128 KiB and more on its own), and every replay fault in
	 * fresh pages again: 20,000 faults in 300 replays of a 2,000-task
	 * trace, a tenth of the rate measured, for a layout that one added
	 * field can bring about. Tables of 2 MiB and more are mapped by
	 * libwave itself. */
	if (o->repeat > 1) {
		mallopt(M_TRIM_THRESHOLD, 256 << 20);
		mallopt(M_MMAP_THRESHOLD, 32 << 20);
	}
#endif
	for (unsigned i = 0; i < o->repeat && ret == 0; i++) {
		/* Each replay's state starts with the last one's tables. */
		ret = replay_run(r, p, params, &kept, w && i == 0 ? keep_decision : NULL, w, &res,
				 &err);
		secs += res.seconds;
	}
	replay_keep_free(&kept);
	trace_writer_close(w);
	if (ret < 0) {
		fprintf(stderr, "wave-replay: %s: %s\n", o->trace, err.text);
		return ret;
	}
	printf("replay into %s: %" PRIu64 " events (x%u) in %.3f s of CPU: %.2f M events/s\n",
	       wave_plugin_desc(p)->name, res.events, o->repeat, secs,
	       secs > 0 ? (double)res.events * o->repeat / secs / 1e6 : 0);
	printf("  decisions: %" PRIu64 " recorded, %" PRIu64 " replayed (digest %016" PRIx64
	       "); %" PRIu64 " of %" PRIu64 " events decided differently\n",
	       res.decisions_rec, res.decisions_new, res.digest, res.differing_events, res.events);
	print_diffs(meta, &res);
	return 0;
}

static int quality(const struct opts *o, struct trace_reader *r, struct wave_plugin **p,
		   struct wave_params **params, unsigned n)
{
	const struct trace_meta *meta = trace_reader_meta(r);
	const struct replay_model *model = replay_models[meta->domain];
	struct replay_figures f[3];
	struct wave_error err;
	int ret;

	if (!model || !model->quality) {
		printf("(the %s domain has no quality model yet)\n",
		       wave_domain_name(meta->domain));
		return 0;
	}
	if (no_records(r)) {
		printf("quality: the trace holds no records, so nothing to judge\n");
		return 0;
	}
	for (unsigned i = 0; i <= n; i++)
		if ((ret = model->quality(r, i ? p[i - 1] : NULL, i ? params[i - 1] : NULL, &f[i],
					  &err)) < 0) {
			fprintf(stderr, "wave-replay: %s: %s\n", o->trace, err.text);
			return ret;
		}
	printf("quality (the trace's workload on the %s model of the host):\n",
	       wave_domain_name(meta->domain));
	printf("  %-18s %-4s %14s", "figure", "unit", "recorded");
	for (unsigned i = 0; i < n; i++)
		printf(" %14s", wave_plugin_desc(p[i])->name);
	printf("\n");
	for (unsigned k = 0; k < f[0].n; k++) {
		printf("  %-18s %-4s %14.3f", f[0].name[k], f[0].unit[k], f[0].value[k]);
		for (unsigned i = 1; i <= n; i++)
			printf(" %14.3f", k < f[i].n ? f[i].value[k] : 0.0);
		printf("\n");
	}
	return 0;
}

static int run(const struct opts *o, struct trace_reader *r)
{
	const struct trace_meta *meta = trace_reader_meta(r);
	struct wave_plugin *p[2] = { NULL, NULL };
	struct wave_params *params[2] = { NULL, NULL };
	unsigned n = o->compare ? 2 : o->plugin[0] ? 1 : 0;
	int ret = info(r, o->trace);

	for (unsigned i = 0; ret == 0 && i < n; i++)
		ret = load(o, meta, o->plugin[i], &p[i], &params[i]);
	if (ret == 0 && o->jsonl)
		ret = export_jsonl(r, o->jsonl);
	if (ret == 0 && o->chrome)
		ret = export_chrome(r, o->chrome);
	if (ret == 0 && n == 1)
		ret = replay(o, r, p[0], params[0]);
	if (ret == 0 && o->quality)
		ret = quality(o, r, p, params, n);
	for (unsigned i = 0; i < 2; i++) {
		wave_params_free(params[i]);
		wave_plugin_unload(p[i]);
	}
	return ret;
}

/* Standard output written in full (not a full disk, not a closed pipe).
 * Return: 0, or 1 after saying why. */
static int stdout_ok(void)
{
	FILE *f = jsonl_stdout ? jsonl_stdout : stdout;

	if (fflush(stdout) == 0 && !ferror(stdout) && fflush(f) == 0 && !ferror(f))
		return 0;
	fprintf(stderr, "wave-replay: standard output: %s\n", strerror(errno ? errno : EIO));
	return 1;
}

int main(int argc, char **argv)
{
	struct trace_reader *r;
	struct wave_error err;
	struct opts o;
	int ret = parse_args(argc, argv, &o);

	if (ret == 1)
		usage(stdout);
	if (ret == 2)
		printf("wave-replay (libwave) %s\n", wave_version_string());
	if (ret)
		return ret > 0 ? stdout_ok() : 2;
	if (o.jsonl && strcmp(o.jsonl, "-") == 0) {
		int fd = dup(STDOUT_FILENO);

		if (fd < 0 || !(jsonl_stdout = fdopen(fd, "w")) ||
		    dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
			fprintf(stderr, "wave-replay: standard output: %s\n", strerror(errno));
			return 1;
		}
	}
	if (trace_reader_open(o.trace, &r, &err) < 0) {
		fprintf(stderr, "wave-replay: %s: %s\n", err.source, err.text);
		return 1;
	}
	ret = run(&o, r);
	trace_reader_close(r);
	return stdout_ok() == 0 && ret == 0 ? 0 : 1;
}
