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

static struct fault_state {
	int count;
	struct {
		char point[32];
		int err; /* > 0: errno to return; 0: crash */
	} rule[FAULT_MAX];
} fault_state;

static int errno_by_name(const char *name)
{
	static const struct {
		const char *name;
		int value;
	} table[] = {
		{ "EIO", EIO },	      { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT },
		{ "EROFS", EROFS },   { "ENOMEM", ENOMEM }, { "EACCES", EACCES },
		{ "EAGAIN", EAGAIN }, { NULL, 0 },
	};
	int i;

	for (i = 0; table[i].name; i++)
		if (strcmp(table[i].name, name) == 0)
			return table[i].value;
	return -1;
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
		int err;

		if (!eq)
			continue;
		*eq = '\0';
		err = strcmp(eq + 1, "crash") == 0 ? 0 : errno_by_name(eq + 1);
		if (err < 0) {
			log_warn("FEATUREFS_FAULT: unknown action %s", eq + 1);
			continue;
		}
		strncpy(fault_state.rule[fault_state.count].point, item,
			sizeof(fault_state.rule[0].point) - 1);
		fault_state.rule[fault_state.count].err = err;
		fault_state.count++;
		log_warn("fault injection armed: %s=%s", item, eq + 1);
	}
	free(copy);
}

int fault_inject(const char *point)
{
	int i;

	for (i = 0; i < fault_state.count; i++) {
		if (strcmp(fault_state.rule[i].point, point) != 0)
			continue;
		if (fault_state.rule[i].err == 0) {
			log_warn("fault injection: crashing at %s", point);
			kill(getpid(), SIGKILL);
			pause();
		}
		return -fault_state.rule[i].err;
	}
	return 0;
}

#endif
