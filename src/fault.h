/*
 * fault.h - injected failures for tests (SQLite's aSyscall[] idea, small).
 *
 * The store layer calls fault_inject("<point>") before each system call a
 * test may want to fail, and at each stage of a publish.  In a build
 * configured with -Dfault_injection=true, FEATUREFS_FAULT="point=ACTION,..."
 * makes that point fail with ACTION (an errno name such as ENOSPC or EIO)
 * or kill the process on the spot (ACTION "crash", a SIGKILL: no cleanup
 * runs, exactly as `kill -9`), or never return (ACTION "stall": a thread
 * hung as if in a debugger, until the process is killed).  "point=ACTION@N" fires at the Nth hit of
 * the point only (a transient error; tmp_write=crash@3 dies with two
 * writes' data in tmp/), "point=ACTION@N+" at the Nth and every later
 * one (a disk that stays full).  Other builds compile the hook to nothing
 * and never read the variable.
 *
 * Points, in the order a write meets them:
 *   tmp_write         each write(2) into the tmp file
 *   validate          the Parquet check at close (before it runs)
 *   page_walk         the walk of its pages, for a file written in order
 *                     with ranges no write reached (a sparse copy)
 *   tmp_fsync         the fsync of the tmp file once it validated
 *   seal              recording in the row that the tmp file holds what
 *                     close() accepted
 *   compress          before a compressed copy is written (compress=zstd|auto)
 *   publish_rename    before the tmp file is linked into objects/
 *   objects_fsync     the object is in place: the fsync of its directory
 *   after_rename      the object is in place, the row still says writing
 *   manifest_publish  just before the row is flipped to published
 * and, on a read-open: backing_open (a passthrough backing file); and
 * lookup, each LOOKUP request; ctl_accept, each accept(2) of a
 * maintenance command's connection to the control socket;
 * recover_publish, where mount recovery or fsck -p publishes a dead
 * writer's row; remove_unlink, between a removal's rows and the unlink of
 * their objects; and symbol_rmdir, between a symbol's row and its
 * directory.
 * Tests: tests/bats/faults.bats, tests/bats/compress.bats.
 */
#ifndef FEATUREFS_FAULT_H
#define FEATUREFS_FAULT_H

#ifdef FEATUREFS_FAULT_INJECTION
/* Read FEATUREFS_FAULT once; call before any thread starts. */
void fault_setup(void);
/* 0, or the negative errno configured for `point` (may not return).
 * Safe to call from any thread. */
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
