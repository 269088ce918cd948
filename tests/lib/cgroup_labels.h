/* SPDX-License-Identifier: MIT */
/*
 * cgroup_labels.h - the Prometheus labels that follow comm on a process's
 * samples (cgroup, pod_uid, container_id), built from its JSON document,
 * so that tests can name a sample exactly and check the two agree.
 */
#ifndef HF_TEST_CGROUP_LABELS_H
#define HF_TEST_CGROUP_LABELS_H

#include <stdio.h>

#include <jansson.h>

/*
 * ",cgroup=\"...\",pod_uid=\"...\",container_id=\"...\"", each only where
 * doc has it, escaped as the exposition format escapes label values.
 */
static inline void hf_test_cgroup_labels(json_t *doc, char *out, size_t len)
{
	static const char *const keys[] = {"cgroup", "pod_uid", "container_id"};
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < 3 && o + 8 < len; i++) {
		const char *v = json_string_value(json_object_get(doc, keys[i]));
		int n;

		if (!v)
			continue;
		n = snprintf(out + o, len - o, ",%s=\"", keys[i]);
		o += n > 0 ? (size_t)n : 0;
		for (; *v && o + 3 < len; v++) {
			if (*v == '\\' || *v == '"' || *v == '\n')
				out[o++] = '\\';
			out[o++] = *v == '\n' ? 'n' : *v;
		}
		if (o + 2 < len)
			out[o++] = '"';
		out[o] = '\0';
	}
}

#endif /* HF_TEST_CGROUP_LABELS_H */
