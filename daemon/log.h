/* SPDX-License-Identifier: MIT */
/*
 * log.h - the daemon's one logging macro.
 *
 * hf_log() checks the level before its arguments are evaluated, so a debug
 * line costs one compare when debug logging is off.  Lines go to stderr as
 * "heapfragd: LEVEL: message".
 */
#ifndef HF_LOG_H
#define HF_LOG_H

enum hf_log_level {
	HF_LOG_ERROR = 0,
	HF_LOG_WARN = 1,
	HF_LOG_INFO = 2,
	HF_LOG_DEBUG = 3,
};

extern enum hf_log_level hf_log_level;

void hf_log_write(enum hf_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define hf_log(level, ...)                                                                         \
	do {                                                                                       \
		if ((level) <= hf_log_level)                                                       \
			hf_log_write((level), __VA_ARGS__);                                        \
	} while (0)

/* Routes libbpf's own messages through hf_log (libbpf_set_print). */
void hf_log_route_libbpf(void);

#endif /* HF_LOG_H */
