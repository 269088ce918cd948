/* SPDX-License-Identifier: MIT */
/*
 * cgroup.h - a process's cgroup, and the Kubernetes pod and container it
 * names, from /proc/PID/cgroup.
 *
 * Which line: the cgroup v2 line ("0::PATH") where the kernel prints one
 * (on a v2 or hybrid machine); on a v1-only machine the "name=systemd"
 * hierarchy, which runtimes join as they join the controllers, then the
 * "memory" controller's (the kubelet always sets memory limits), then the
 * first line.  The one exception: on a hybrid machine a runtime using the
 * cgroupfs driver may leave the v2 hierarchy alone (the process stays at
 * "0::/") while it places the process in the v1 controllers, so when the
 * preferred line has no Kubernetes shape and another line in that order
 * has, that line is taken: what users join on is the pod and container.
 *
 * The Kubernetes shapes (kubelet's cgroupfs and systemd drivers, with
 * containerd, CRI-O or docker):
 *   /kubepods/burstable/pod<uid>/<container id>
 *   /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with _>.slice/
 *     cri-containerd-<id>.scope | crio-<id>.scope | docker-<id>.scope
 * The pod is the first component, from the root, that looks like a pod and
 * lies below a component naming "kubepods": a container that may create
 * cgroups of its own can only do so below the ones the kubelet made, so it
 * cannot pass off a pod and container of its choosing.  The container is the
 * component right below the pod; anything deeper is the container's own.
 */
#ifndef HF_CGROUP_H
#define HF_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define HF_CGROUP_LEN       1024
#define HF_POD_UID_LEN      37 /* 8-4-4-4-12 hex digits and dashes, and the NUL */
#define HF_CONTAINER_ID_LEN 65 /* 64 hex digits and the NUL */

/*
 * Each string is "" when unknown: path when no line was usable or the path
 * does not fit HF_CGROUP_LEN (a cut path would name another cgroup);
 * pod_uid and container_id when the path has no Kubernetes shape.
 */
struct hf_cgroup {
	/*
	 * The path as the kernel printed it, made printable: each byte that
	 * starts no valid UTF-8 sequence, and each control character, is '?'.
	 */
	char path[HF_CGROUP_LEN];
	char pod_uid[HF_POD_UID_LEN];           /* lower-case, with dashes */
	char container_id[HF_CONTAINER_ID_LEN]; /* lower-case hex, no runtime prefix */
};

/*
 * Parses the text of /proc/PID/cgroup (len bytes, not NUL-terminated;
 * lines of any length; lines that are not "ID:CONTROLLERS:PATH" are
 * skipped).  Returns 0, or -EINVAL when no line is usable.
 */
int hf_cgroup_parse(const char *text, size_t len, struct hf_cgroup *out);

/*
 * The pod UID and container ID in a cgroup path of len bytes (see above);
 * false when it has no pod.  container_id is "" for a process in the pod's
 * own cgroup or in a cgroup below it that is not a container's.
 */
bool hf_cgroup_kube(const char *path, size_t len, char pod_uid[HF_POD_UID_LEN],
		    char container_id[HF_CONTAINER_ID_LEN]);

/* Reads /proc/PID/cgroup; -ESRCH when the process is gone. */
int hf_cgroup_read(pid_t pid, struct hf_cgroup *out);

#endif /* HF_CGROUP_H */
