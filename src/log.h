/*
 * log.h - one place where featurefs says what went wrong.
 *
 * Messages go to stderr (commands, foreground mounts) or to syslog (a
 * daemonized mount).  They start lowercase, name the operation and the
 * object, and end with the reason: "publish AAPL/3f2a...: fsync: No space
 * left on device".  The "featurefs: " prefix is added here.
 */
#ifndef FEATUREFS_LOG_H
#define FEATUREFS_LOG_H

#include <stdint.h>
#include <syslog.h>

/* Send further messages to syslog (1) or stderr (0). */
void log_use_syslog(int on);

/* Print messages of priority LOG_DEBUG too. */
void log_set_debug(int on);

#include <stdarg.h>

void log_msg(int priority, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(int priority, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Copy `in` to `out` (room for 4 * strlen(in) + 1 bytes) with control
 * characters and backslashes escaped C style (\n, \t, \xNN, \\), as
 * every message is before it is printed. */
void log_escape(const char *in, char *out);

/*
 * One recurring condition that anyone can provoke (clients that hang
 * up, a daemon out of descriptors under a flood of opens) is logged once
 * a period, not once a request: log_limit_pass() says whether now is the
 * time, -1 if not, else how many were held back since the last one.
 * Zero-initialized; callers share it across threads.
 */
struct log_limit {
	int64_t next_us;		/* atomic: monotonic time of the next */
	int64_t held_back;		/* atomic */
};

#define LOG_LIMIT_EVERY_US (60 * 1000000LL)

int64_t log_limit_pass(struct log_limit *l);

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
