/*
 * test_names.c - what a symbol, a key and a child name may be (SPEC §2).
 */
#include <errno.h>
#include <string.h>

#include "names.h"
#include "unit.h"

static void test_symbols(void)
{
	char long_sym[SYMBOL_MAX + 2];

	CHECK_INT(name_check_symbol("AAPL"), 0);
	CHECK_INT(name_check_symbol("BRK.B"), 0);
	CHECK_INT(name_check_symbol("^GSPC"), 0);
	CHECK_INT(name_check_symbol("EURUSD=X"), 0);
	CHECK_INT(name_check_symbol("ES-F_2026"), 0);
	CHECK_INT(name_check_symbol(""), -EINVAL);
	CHECK_INT(name_check_symbol(".hidden"), -EINVAL);
	CHECK_INT(name_check_symbol("a b"), -EINVAL);
	CHECK_INT(name_check_symbol("a/b"), -EINVAL);
	CHECK_INT(name_check_symbol("caf\xc3\xa9"), -EINVAL);
	memset(long_sym, 'A', SYMBOL_MAX);
	long_sym[SYMBOL_MAX] = '\0';
	CHECK_INT(name_check_symbol(long_sym), 0);
	long_sym[SYMBOL_MAX] = 'A';
	long_sym[SYMBOL_MAX + 1] = '\0';
	CHECK_INT(name_check_symbol(long_sym), -ENAMETOOLONG);
}

static void test_children(void)
{
	char key[KEY_MAX + 1], name[300];

	CHECK_INT(name_parse_child("0123456789abcdef.parquet", key), NAME_ENTRY);
	CHECK_STR(key, "0123456789abcdef");
	CHECK_INT(name_parse_child("abcdefgh.parquet", key), NAME_ENTRY);
	CHECK_INT(name_parse_child("abcdefg.parquet", key), -EINVAL);
	CHECK_INT(name_parse_child(".rsync.tmp.XYZ", key), NAME_SCRATCH);
	CHECK_INT(name_parse_child(".x", key), NAME_SCRATCH);
	CHECK_INT(name_parse_child("x.csv", key), -EINVAL);
	/* the temporary name of an entry is a scratch name */
	CHECK_INT(name_parse_child("abcdefgh.parquet.zst", key), NAME_SCRATCH);
	CHECK_INT(name_parse_child("abcdefgh.parquet.1a2B3c4D", key),
		  NAME_SCRATCH);
	CHECK_INT(name_parse_child("abcdefgh.parquet.x1.partial", key),
		  NAME_SCRATCH);
	CHECK_INT(name_parse_child("abcdefgh.parquet.", key), -EINVAL);
	CHECK_INT(name_parse_child("abcdefgh.parquetx", key), -EINVAL);
	CHECK_INT(name_parse_child("abcdefg.parquet.tmp", key), -EINVAL);
	CHECK_INT(name_parse_child("abc defgh.parquet.tmp", key), -EINVAL);
	CHECK_INT(name_parse_child("abcdefgh.tmp.parquet", key), -EINVAL);
	CHECK_INT(name_parse_child("tmpabcdefgh", key), -EINVAL);
	CHECK_INT(name_parse_child("abc defgh.parquet", key), -EINVAL);
	CHECK_INT(name_parse_child("abcdefgh", key), -EINVAL);
	CHECK_INT(name_parse_child(".parquet", key), NAME_SCRATCH);
	CHECK_INT(name_parse_child("abcdefgh.PARQUET", key), -EINVAL);
	memset(name, 'a', 200);
	strcpy(name + 200, ".parquet");
	CHECK_INT(name_parse_child(name, key), -ENAMETOOLONG);
	memset(name, 'a', KEY_MAX);
	strcpy(name + KEY_MAX, ".parquet");
	CHECK_INT(name_parse_child(name, key), NAME_ENTRY);
	CHECK_INT((int)strlen(key), KEY_MAX);
	strcpy(name + KEY_MAX, ".parquet.tmp");
	CHECK_INT(name_parse_child(name, key), NAME_SCRATCH);
	strcpy(name + KEY_MAX, "a.parquet.tmp");
	CHECK_INT(name_parse_child(name, key), -ENAMETOOLONG);
	strcpy(name + KEY_MAX, ".parquet");
	name[5] = ' ';
	memset(name + KEY_MAX, 'a', 10);
	strcpy(name + KEY_MAX + 10, ".parquet");
	CHECK_INT(name_parse_child(name, key), -EINVAL);
}

int main(void)
{
	test_symbols();
	test_children();
	return unit_report();
}
