/*
 * names.h - what a name in the mount may be (SPEC §2).
 *
 * Root holds symbol directories; a symbol directory holds entries
 * "<key>.parquet" and scratch files: names starting with '.', and
 * "<key>.parquet.<tail>", the temporary name download tools and
 * atomic-write libraries give a file they rename when it is whole.  These
 * checks are pure functions so the FUSE layer, the commands and the fuzzer
 * share one definition.
 */
#ifndef FEATUREFS_NAMES_H
#define FEATUREFS_NAMES_H

#define SYMBOL_MAX 64
#define KEY_MIN 8
#define KEY_MAX 128
#define ENTRY_SUFFIX ".parquet"
#define ENTRY_SUFFIX_LEN 8
/* Longest name of any kind, as statfs reports (f_namemax): the kernel
 * hands FUSE names of up to 1024 bytes. */
#define NAME_BYTES_MAX 255
/* "<symbol>/<key>": the lock name of an entry */
#define LOCK_NAME_MAX (SYMBOL_MAX + 1 + KEY_MAX)

enum name_kind {
	NAME_ENTRY = 1,		/* "<key>.parquet" */
	NAME_SCRATCH = 2,	/* ".anything" or "<key>.parquet.<tail>":
				 * private to the mount */
};

/* 0 for a valid symbol, -EINVAL when malformed, -ENAMETOOLONG when longer
 * than SYMBOL_MAX. */
int name_check_symbol(const char *name);

/* 0 for a valid key (8..128 of [A-Za-z0-9_-]), -EINVAL or -ENAMETOOLONG. */
int name_check_key(const char *key);

/*
 * Classify a name inside a symbol directory.  Returns NAME_ENTRY (and
 * copies the key into `key`, KEY_MAX + 1 bytes), NAME_SCRATCH, or
 * -EINVAL / -ENAMETOOLONG for a name that may not be created there.
 */
int name_parse_child(const char *name, char *key);

#endif
