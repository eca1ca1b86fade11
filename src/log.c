/*
 * log.c - stderr or syslog output for every module.
 *
 * The only state is where messages go, set once at start-up (and when a
 * mount daemonizes), kept in one struct.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "strbuf.h"

static struct log_state {
	int syslog;
	int debug;
} log_state;

void log_use_syslog(int on)
{
	if (on && !log_state.syslog)
		openlog("featurefs", LOG_PID, LOG_DAEMON);
	log_state.syslog = on;
}

void log_set_debug(int on)
{
	log_state.debug = on;
}

/* Messages quote names that users chose: a name must not start a line of
 * its own in the log or reach an operator's terminal as an escape
 * sequence. */
void log_escape(const char *in, char *out)
{
	const unsigned char *p;

	for (p = (const unsigned char *)in; *p; p++)
		out += escape_byte(*p, out);
	*out = '\0';
}

void log_msg(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(priority, fmt, ap);
	va_end(ap);
}

void log_vmsg(int priority, const char *fmt, va_list ap)
{
	char line[1024], safe[4 * sizeof(line)];

	if (priority == LOG_DEBUG && !log_state.debug)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	log_escape(line, safe);
	if (log_state.syslog)
		syslog(priority, "%s", safe);
	else
		fprintf(stderr, "featurefs: %s\n", safe);
}

int64_t log_limit_pass(struct log_limit *l)
{
	int64_t now = mono_us();
	int64_t next = __atomic_load_n(&l->next_us, __ATOMIC_RELAXED);

	if (now < next ||
	    !__atomic_compare_exchange_n(&l->next_us, &next,
					 now + LOG_LIMIT_EVERY_US, 0,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		__atomic_add_fetch(&l->held_back, 1, __ATOMIC_RELAXED);
		return -1;
	}
	return __atomic_exchange_n(&l->held_back, 0, __ATOMIC_RELAXED);
}
