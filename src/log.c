/*
 * log.c - stderr or syslog output for every module.
 *
 * The only state is where messages go, set once at start-up (and when a
 * mount daemonizes), kept in one struct.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

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

void log_msg(int priority, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (priority == LOG_DEBUG && !log_state.debug)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_state.syslog)
		syslog(priority, "%s", line);
	else
		fprintf(stderr, "featurefs: %s\n", line);
}
