/*
 * fault.c - the FEATUREFS_FAULT parser for test builds (see fault.h).
 */
#ifdef FEATUREFS_FAULT_INJECTION

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"

#define FAULT_MAX 8
#define FAULT_CRASH 0
#define FAULT_STALL (-2)

static struct fault_state {
	int count;
	struct {
		char point[32];
		int err;	/* > 0: errno to return, or FAULT_CRASH/STALL */
		long first;	/* first hit that fires (0-based) */
		long last;	/* last hit that fires; -1: no end */
		long hits;	/* atomic: hits so far */
	} rule[FAULT_MAX];
} fault_state;

/* The value of the errno named `name` ("EIO"), or -EINVAL. */
static int errno_by_name(const char *name)
{
	static const struct {
		const char *name;
		int value;
	} table[] = {
		{ "EIO", EIO },		{ "ENOSPC", ENOSPC },
		{ "EDQUOT", EDQUOT },	{ "EROFS", EROFS },
		{ "ENOMEM", ENOMEM },	{ "EACCES", EACCES },
		{ "EAGAIN", EAGAIN },	{ "EBUSY", EBUSY },
		{ "ETIMEDOUT", ETIMEDOUT }, { "EFBIG", EFBIG },
		{ "EPERM", EPERM },	{ "EMFILE", EMFILE },
		{ NULL, 0 },
	};
	int i;

	for (i = 0; table[i].name; i++)
		if (strcmp(table[i].name, name) == 0)
			return table[i].value;
	return -EINVAL;
}

/* Parse "ACTION", "ACTION@N" (the Nth hit only) or "ACTION@N+" (the Nth
 * hit and every later one) into *err and the range of hits: 0, or
 * -EINVAL. */
static int parse_action(char *action, int *err, long *first, long *last)
{
	char *at = strchr(action, '@'), *end;

	*first = 0;
	*last = -1;
	if (at) {
		*at = '\0';
		*first = strtol(at + 1, &end, 10) - 1;
		if (end == at + 1 || *first < 0)
			return -EINVAL;
		if (*end == '+')
			end++;
		else
			*last = *first;
		if (*end)
			return -EINVAL;
	}
	if (strcmp(action, "crash") == 0)
		*err = FAULT_CRASH;
	else if (strcmp(action, "stall") == 0)
		*err = FAULT_STALL;
	else
		*err = errno_by_name(action);
	return *err == -EINVAL ? -EINVAL : 0;
}

void fault_setup(void)
{
	const char *env = getenv("FEATUREFS_FAULT");
	char *copy, *item, *save = NULL;

	if (!env || !*env)
		return;
	copy = strdup(env);
	if (!copy)
		return;
	for (item = strtok_r(copy, ",", &save); item && fault_state.count < FAULT_MAX;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		long first, last;
		int err;

		if (!eq)
			continue;
		*eq = '\0';
		log_warn("fault injection armed: %s=%s", item, eq + 1);
		if (parse_action(eq + 1, &err, &first, &last) < 0) {
			log_warn("FEATUREFS_FAULT: bad action for %s (an "
				 "errno name, crash or stall, then @N or @N+)", item);
			continue;
		}
		strncpy(fault_state.rule[fault_state.count].point, item,
			sizeof(fault_state.rule[0].point) - 1);
		fault_state.rule[fault_state.count].err = err;
		fault_state.rule[fault_state.count].first = first;
		fault_state.rule[fault_state.count].last = last;
		fault_state.count++;
	}
	free(copy);
}

int fault_inject(const char *point)
{
	long hit;
	int i;

	for (i = 0; i < fault_state.count; i++) {
		if (strcmp(fault_state.rule[i].point, point) != 0)
			continue;
		hit = __atomic_fetch_add(&fault_state.rule[i].hits, 1,
					 __ATOMIC_RELAXED);
		if (hit < fault_state.rule[i].first ||
		    (fault_state.rule[i].last >= 0 &&
		     hit > fault_state.rule[i].last))
			return 0;
		if (fault_state.rule[i].err == FAULT_CRASH) {
			log_warn("fault injection: crashing at %s", point);
			kill(getpid(), SIGKILL);
			pause();
		}
		if (fault_state.rule[i].err == FAULT_STALL) {
			log_warn("fault injection: stalling at %s", point);
			for (;;)
				pause();
		}
		log_debug("fault injection: %s fails with %s", point,
			  strerror(fault_state.rule[i].err));
		return -fault_state.rule[i].err;
	}
	return 0;
}

#endif
