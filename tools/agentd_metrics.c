/* SPDX-License-Identifier: MIT */
/*
 * The metrics endpoint of wave-agentd (agentd_metrics.h). The listening
 * socket is made here, not by libmicrohttpd, so that a port in use or an
 * address not on this machine is reported with its reason, and port 0
 * (any free port) can be printed once bound. Each request takes the
 * statistics through wave_agent_stats_json(), which is safe from any
 * thread, and converts them with stats_prom_write().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "agentd_metrics.h"
#include "stats_prom.h"

/* Requests served at once, and how long an idle connection may stay (s):
 * a scraper needs one and is answered in milliseconds; more, or idle
 * ones, are someone else's. Clients that hold every connection idle make
 * a scrape wait in the backlog; 2 s (the stats socket's bound too) gives a
 * scraper, whose timeout is 10 s by default, several chances a scrape. */
#define METRICS_CONNECTIONS 8
#define METRICS_IDLE_S 2

struct agentd_metrics {
	struct MHD_Daemon *d;
	struct wave_agent *a;
};

/* The metrics text, or NULL when out of memory. */
static char *metrics_text(struct wave_agent *a, size_t *len)
{
	char *json = NULL, *text = NULL;
	json_t *doc = NULL;
	FILE *f;

	if (wave_agent_stats_json(a, &json) < 0 || !(doc = json_loads(json, 0, NULL)) ||
	    !(f = open_memstream(&text, len))) {
		free(json);
		json_decref(doc);
		return NULL;
	}
	if (stats_prom_write(f, doc) < 0 || ferror(f)) {
		fclose(f);
		free(text);
		text = NULL;
	} else if (fclose(f) != 0) {
		free(text);
		text = NULL;
	}
	free(json);
	json_decref(doc);
	return text;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
			       char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *msg)
{
	char *body = strdup(msg);

	return body ? respond(c, status, "text/plain; charset=utf-8", body, strlen(body)) : MHD_NO;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **req)
{
	struct agentd_metrics *m = cls;
	size_t len;
	char *text;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)req;
	/* Answered at the first call, before any body: a scrape has none. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	if (strcmp(url, "/metrics") != 0)
		return respond_text(c, MHD_HTTP_NOT_FOUND, "the metrics are at /metrics\n");
	text = metrics_text(m->a, &len);
	if (!text)
		return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return respond(c, MHD_HTTP_OK, STATS_PROM_CONTENT_TYPE, text, len);
}

/* A listening TCP socket on @addr:@port; prints why not. Return: fd or -1. */
static int metrics_listen(const char *addr, unsigned port, unsigned *bound)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1;

	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		len = sizeof(*s6);
	} else {
		fprintf(stderr, "wave-agentd: metrics: '%s' is not a numeric address\n", addr);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		fprintf(stderr, "wave-agentd: metrics: cannot listen on %s port %u: %s\n", addr,
			port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*bound = ntohs(ss.ss_family == AF_INET ? s4->sin_port : s6->sin6_port);
	return fd;
}

int agentd_metrics_start(const struct wave_config *cfg, struct wave_agent *a,
			 struct agentd_metrics **out)
{
	struct agentd_metrics *m;
	unsigned port = 0;
	int fd;

	*out = NULL;
	if (!cfg->metrics)
		return 0;
	if (!(m = calloc(1, sizeof(*m))))
		return -1;
	m->a = a;
	fd = metrics_listen(cfg->metrics_address, cfg->metrics_port, &port);
	if (fd >= 0)
		m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
					MHD_USE_ERROR_LOG, 0, NULL, NULL, answer, m,
					MHD_OPTION_LISTEN_SOCKET, fd,
					MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONNECTIONS,
					MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_IDLE_S,
					MHD_OPTION_END);
	if (!m->d) {
		if (fd >= 0) {
			fprintf(stderr, "wave-agentd: metrics: cannot start the HTTP server\n");
			close(fd);
		}
		free(m);
		return -1;
	}
	fprintf(stderr, "wave-agentd: metrics on http://%s%s%s:%u/metrics\n",
		strchr(cfg->metrics_address, ':') ? "[" : "", cfg->metrics_address,
		strchr(cfg->metrics_address, ':') ? "]" : "", port);
	*out = m;
	return 0;
}

void agentd_metrics_stop(struct agentd_metrics *m)
{
	if (!m)
		return;
	/* MHD_stop_daemon() closes the listening socket it was given. */
	MHD_stop_daemon(m->d);
	free(m);
}
