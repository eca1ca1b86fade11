/*
 * http.h - the HTTP endpoint of -o metrics=[ADDR:]PORT (SPEC §9), served
 * by libmicrohttpd from a thread of its own, never a FUSE thread:
 *
 *   GET /metrics        what /.featurefs/metrics holds (Prometheus text)
 *   GET /health         what /.featurefs/health holds (JSON)
 *   GET /health/live    200 while the daemon serves
 *   GET /health/ready   200, or 503 when the manifest or the store's tmp/
 *                       cannot take a new entry
 *   GET /slo            JSON: SPEC §9's objectives over the last five
 *                       minutes (slo.h), each measured and passed or not
 *
 * HEAD works as GET without the body; other methods get 405, other paths
 * 404.  The socket is bound before the mount daemonizes, so a bad address
 * or a port in use fails the mount command itself.
 */
#ifndef FEATUREFS_HTTP_H
#define FEATUREFS_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

struct ffs;

/* Parse "[ADDR:]PORT" (ADDR a numeric IPv4 address or a bracketed IPv6
 * one, 127.0.0.1 when left out; PORT 0-65535, 0 for any free port) into
 * the address to bind, `ss` of `len` bytes.  0 or -EINVAL. */
int http_parse_endpoint(const char *spec, struct sockaddr_storage *ss,
			socklen_t *len);

/* Bind and listen on ffs->opt.metrics (nothing when it is NULL) and name
 * the address bound in ffs->metrics_bound.  0 or -errno, logged. */
int http_listen(struct ffs *ffs);

/* Serve the listening socket.  0 or -errno, logged. */
int http_start(struct ffs *ffs);

/* Stop serving and close the socket; safe if never listened or started. */
void http_stop(struct ffs *ffs);

#endif
