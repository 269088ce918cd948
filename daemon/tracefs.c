// SPDX-License-Identifier: MIT
#include "tracefs.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "log.h"

#define TRACEFS "/sys/kernel/tracing"

int hf_tracefs_ensure(void)
{
	/*
	 * AT_EACCESS: checked with the capabilities heapfragd holds.  access()
	 * would drop them for a non-root user, and tracefs is root's alone.
	 */
	if (faccessat(AT_FDCWD, TRACEFS "/events", F_OK, AT_EACCESS) == 0 ||
	    faccessat(AT_FDCWD, "/sys/kernel/debug/tracing/events", F_OK, AT_EACCESS) == 0)
		return 0;
	if (mount("tracefs", TRACEFS, "tracefs", 0, NULL) != 0) {
		int err = -errno;

		hf_log(HF_LOG_ERROR, "failed to mount tracefs at %s: %m", TRACEFS);
		return err;
	}
	hf_log(HF_LOG_INFO, "mounted tracefs at %s", TRACEFS);
	return 0;
}
