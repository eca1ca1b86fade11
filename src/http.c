/*
 * http.c - the metrics and health endpoint on libmicrohttpd (http.h).
 *
 * The bodies are the control files' (control.c): rendered per request in
 * libmicrohttpd's own thread, from the same counters a FUSE read of
 * /.featurefs sees.  Nothing here takes a lock a FUSE thread holds for
 * long; a slow manifest slows a scrape, never a file operation.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "control.h"
#include "ffs.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "slo.h"

#define CONNECTIONS_MAX 128	/* scrapers at once */
#define HTTP_THREADS 4		/* each polls its share of them */
#define CONNECTIONS_PER_IP 32	/* ... from one address: every local
				 * client shares 127.0.0.1, and a browser
				 * or a pooled client keeps several */
#define IDLE_TIMEOUT_S 10	/* a client that sends nothing is dropped */

int http_parse_endpoint(const char *spec, struct sockaddr_storage *ss,
			socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(spec, ':'), *p;
	unsigned long v = 0;
	char host[64];
	size_t n;

	if (!colon) {
		p = spec;
		snprintf(host, sizeof(host), "127.0.0.1");
	} else {
		p = colon + 1;
		n = (size_t)(colon - spec);
		if (n >= 2 && spec[0] == '[' && spec[n - 1] == ']') {
			spec++; /* [v6]:port */
			n -= 2;
		}
		if (n == 0 || n >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec, n);
		host[n] = '\0';
	}
	if (*p == '\0' || strlen(p) > 5)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)v);
		*len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)v);
		*len = sizeof(*in6);
	} else {
		return -EINVAL; /* a name: resolving it is not ours to do */
	}
	return 0;
}

int http_listen(struct ffs *ffs)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	char shown[INET6_ADDRSTRLEN];
	int fd = -1, one = 1, rc;

	if (!ffs->opt.metrics)
		return 0;
	if (http_parse_endpoint(ffs->opt.metrics, &ss, &len) < 0)
		return -EINVAL; /* checked with the other options */
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		rc = -errno;
		log_err("metrics=%s: %s", ffs->opt.metrics, strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &in4->sin_addr, shown, sizeof(shown));
		snprintf(ffs->metrics_bound, sizeof(ffs->metrics_bound),
			 "%s:%u", shown, ntohs(in4->sin_port));
	} else {
		inet_ntop(AF_INET6, &in6->sin6_addr, shown, sizeof(shown));
		snprintf(ffs->metrics_bound, sizeof(ffs->metrics_bound),
			 "[%s]:%u", shown, ntohs(in6->sin6_port));
	}
	ffs->http_fd = fd;
	return 0;
}

/* Queue `body` (malloc()ed, handed over) with `status` and `type`. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     const char *type, char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer_with_free_callback(len, body,
							      free);
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

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status,
				  const char *text)
{
	char *body = strdup(text);

	if (!body)
		return MHD_NO;
	return reply(c, status, "text/plain; charset=utf-8", body,
		     strlen(body));
}

/* The current text of control file `name`. */
static enum MHD_Result reply_control(struct MHD_Connection *c,
				     struct ffs *ffs, const char *name,
				     const char *type)
{
	size_t i, len;
	char *body;

	for (i = 0; i < control_file_count(); i++)
		if (strcmp(control_file_name(i), name) == 0)
			break;
	body = control_snapshot(ffs, (int)i, &len);
	if (!body)
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "out of memory\n");
	return reply(c, MHD_HTTP_OK, type, body, len);
}

static enum MHD_Result reply_ready(struct MHD_Connection *c, struct ffs *ffs)
{
	struct metrics_health h;

	control_health(ffs, &h);
	if (!h.manifest)
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "not ready: the manifest does not answer, or "
				  "refuses writes\n");
	if (!h.storage)
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "not ready: the store cannot take a new "
				  "entry (tmp/ not writable or full)\n");
	return reply_text(c, MHD_HTTP_OK, "ready\n");
}

static enum MHD_Result reply_slo(struct MHD_Connection *c, struct ffs *ffs)
{
	struct strbuf sb = STRBUF_INIT;
	size_t len;
	char *body;

	slo_render(&ffs->slo, &ffs->ctr, &sb);
	body = sb.err ? NULL : sb_detach(&sb, &len);
	sb_release(&sb);
	if (!body)
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "out of memory\n");
	return reply(c, MHD_HTTP_OK, "application/json", body, len);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **req_cls)
{
	struct ffs *ffs = cls;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)req_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "method not allowed: GET or HEAD\n");
	if (strcmp(url, "/metrics") == 0)
		return reply_control(c, ffs, "metrics",
				     "text/plain; version=0.0.4; "
				     "charset=utf-8");
	if (strcmp(url, "/health") == 0)
		return reply_control(c, ffs, "health", "application/json");
	if (strcmp(url, "/health/live") == 0)
		return reply_text(c, MHD_HTTP_OK, "live\n");
	if (strcmp(url, "/health/ready") == 0)
		return reply_ready(c, ffs);
	if (strcmp(url, "/slo") == 0)
		return reply_slo(c, ffs);
	return reply_text(c, MHD_HTTP_NOT_FOUND,
			  "not found: /metrics, /health, /health/live, "
			  "/health/ready or /slo\n");
}

/* libmicrohttpd's unescaping of the URL, but for a %00: the NUL would cut
 * the path short, and /metrics%00.txt answer as /metrics.  Left escaped,
 * such a path is no endpoint's. */
static size_t unescape_url(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	if (strstr(s, "%00"))
		return strlen(s);
	return MHD_http_unescape(s);
}

/* libmicrohttpd's messages are about clients mostly (one that hung up
 * mid-request): anyone who reaches the address could fill the log with
 * them, so one a minute is logged, with how many were held back. */
static void log_mhd(void *cls, const char *fmt, va_list ap)
{
	struct ffs *ffs = cls;
	int64_t dropped = log_limit_pass(&ffs->http_log);
	char line[512];
	size_t n;

	if (dropped < 0)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	if (dropped)
		log_warn("http: %s (and %lld more such messages held back)",
			 line, (long long)dropped);
	else
		log_warn("http: %s", line);
}

int http_start(struct ffs *ffs)
{
	struct MHD_Daemon *d;

	if (ffs->http_fd < 0)
		return 0;
	d = MHD_start_daemon(
		MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		answer, ffs, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, ffs,
		/* a scrape waiting on the store holds up its thread's
		 * connections only: the others take liveness probes */
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS,
		MHD_OPTION_LISTEN_SOCKET, ffs->http_fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned)CONNECTIONS_PER_IP,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape_url, NULL,
		MHD_OPTION_END);
	if (!d) {
		log_err("metrics=%s: the HTTP server did not start",
			ffs->opt.metrics);
		return -EIO;
	}
	ffs->http_daemon = d;
	log_info("metrics and health served at http://%s/",
		 ffs->metrics_bound);
	return 0;
}

void http_stop(struct ffs *ffs)
{
	if (ffs->http_daemon) {
		MHD_stop_daemon(ffs->http_daemon); /* closes the socket */
		ffs->http_daemon = NULL;
	} else if (ffs->http_fd >= 0) {
		close(ffs->http_fd);
	}
	ffs->http_fd = -1;
}
