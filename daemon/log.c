// SPDX-License-Identifier: MIT
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include <bpf/libbpf.h>

enum hf_log_level hf_log_level = HF_LOG_INFO;

static const char *const level_names[] = {
	[HF_LOG_ERROR] = "error",
	[HF_LOG_WARN] = "warning",
	[HF_LOG_INFO] = "info",
	[HF_LOG_DEBUG] = "debug",
};

void hf_log_write(enum hf_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line keeps lines whole when threads log at once. */
	fprintf(stderr, "heapfragd: %s: %s\n", level_names[level], line);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum hf_log_level ours = level == LIBBPF_WARN   ? HF_LOG_WARN
				 : level == LIBBPF_INFO ? HF_LOG_DEBUG
							: HF_LOG_DEBUG;
	char line[1024];
	size_t len;

	if (ours > hf_log_level)
		return 0;
	len = (size_t)vsnprintf(line, sizeof(line), fmt, ap);
	if (len > 0 && len < sizeof(line) && line[len - 1] == '\n')
		line[len - 1] = '\0';
	hf_log_write(ours, "libbpf: %s", line);
	return 0;
}

void hf_log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
