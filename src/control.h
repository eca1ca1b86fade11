/*
 * control.h - the virtual, read-only files of /.featurefs/ (SPEC §2):
 * stats, stats.json, config and health.  Their text is made when a file is
 * opened, so a reader sees one consistent snapshot.
 */
#ifndef FEATUREFS_CONTROL_H
#define FEATUREFS_CONTROL_H

#include <stddef.h>

#include "strbuf.h"

struct ffs;

#define CONTROL_DIR_NAME ".featurefs"

size_t control_file_count(void);
/* Control file `i`'s name, and its path from the mount's root
 * (".featurefs/stats"), which is its node's hkey. */
const char *control_file_name(size_t i);
const char *control_file_path(size_t i);

/* Log why `op` on `name` in /.featurefs (NULL: the directory itself) is
 * refused, and return `rc`: nothing there can be changed. */
int control_refuse(const char *op, const char *name, int rc);

/* Append the current text of control file `i`. */
void control_render(struct ffs *ffs, int i, struct strbuf *sb);
/* Append what stats (json: stats.json) shows. */
void control_render_stats(struct ffs *ffs, int json, struct strbuf *sb);
/* The text as a malloc()ed buffer; NULL when out of memory. */
char *control_snapshot(struct ffs *ffs, int i, size_t *len);

/* How the manifest, the store's tmp/ and the GC are now (/health). */
struct metrics_health;
void control_health(struct ffs *ffs, struct metrics_health *h);

/* Build the live stats report of the mount; stats_release() it.  When
 * the manifest fails, the report keeps the live figures (counters,
 * uptime) and no symbols. */
struct stats_report;
int control_stats_report(struct ffs *ffs, struct stats_report *r);

#endif
