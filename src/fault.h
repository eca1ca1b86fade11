/*
 * fault.h - injected failures for tests (SQLite's aSyscall[] idea, small).
 *
 * The store layer calls fault_inject("<point>") before each system call a
 * test may want to fail, and at each stage of a publish.  In a build
 * configured with -Dfault_injection=true, FEATUREFS_FAULT="point=ACTION,..."
 * makes that point fail with ACTION (an errno name such as ENOSPC or EIO)
 * or kill the process on the spot (ACTION "crash").  Other builds compile
 * the hook to nothing and never read the variable.
 *
 * Points: tmp_write, tmp_fsync, validate, publish_rename, after_rename,
 * manifest_publish.
 */
#ifndef FEATUREFS_FAULT_H
#define FEATUREFS_FAULT_H

#ifdef FEATUREFS_FAULT_INJECTION
/* Read FEATUREFS_FAULT once; call before any thread starts. */
void fault_setup(void);
/* 0, or the negative errno configured for `point` (may not return). */
int fault_inject(const char *point);
#else
static inline void fault_setup(void)
{
}
static inline int fault_inject(const char *point)
{
	(void)point;
	return 0;
}
#endif

#endif
