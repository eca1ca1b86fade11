/*
 * cmd_fsck.c - placeholder until fsck lands.
 */
#include "cli.h"
#include "log.h"

int cmd_fsck(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	log_err("fsck: not available yet");
	return 8;
}
