// SPDX-License-Identifier: MIT
/*
 * /proc/PID/cgroup parsed, and the Kubernetes pod and container read from
 * the path: the shapes the kubelet's two cgroup drivers give with
 * containerd, CRI-O and docker, the lines of v1, v2 and hybrid machines,
 * and names a hostile container could give its own cgroups.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "check.h"

#define UID       "6d3a1e2b-8c4f-4a5e-9b7d-0f1e2d3c4b5a"
#define UID_      "6d3a1e2b_8c4f_4a5e_9b7d_0f1e2d3c4b5a"
#define STATIC    "0123456789abcdef0123456789abcdef"
#define CID       "4f8c1f2d9e0b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"
#define CID_UPPER "4F8C1F2D9E0B7A6C5D4E3F2A1B0C9D8E7F6A5B4C3D2E1F0A9B8C7D6E5F4A3B2C"

struct kube_case {
	const char *path;
	const char *pod;       /* NULL: no pod */
	const char *container; /* "" when none */
};

static const struct kube_case kube_cases[] = {
	/* kubelet's cgroupfs driver: each QoS class, containerd and docker ids. */
	{"/kubepods/burstable/pod" UID "/" CID, UID, CID},
	{"/kubepods/besteffort/pod" UID "/" CID, UID, CID},
	{"/kubepods/pod" UID "/" CID, UID, CID},
	/* CRI-O with cgroupfs names the container crio-<id>. */
	{"/kubepods/burstable/pod" UID "/crio-" CID, UID, CID},
	/* A process in the pod's own cgroup, or the pod cgroup itself. */
	{"/kubepods/burstable/pod" UID, UID, ""},
	{"/kubepods/burstable/pod" UID "/", UID, ""},
	/* A static pod: the UID is its manifest's hash. */
	{"/kubepods/burstable/pod" STATIC "/" CID, STATIC, CID},
	/* The systemd driver: containerd, CRI-O, docker; every QoS class. */
	{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
	 ".slice/cri-containerd-" CID ".scope",
	 UID, CID},
	{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice/crio-" CID
	 ".scope",
	 UID, CID},
	{"/kubepods.slice/kubepods-pod" UID_ ".slice/docker-" CID ".scope", UID, CID},
	/* CRI-O's conmon runs in the pod, but is not the container. */
	{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
	 ".slice/crio-conmon-" CID ".scope",
	 UID, ""},
	/* kind and other nested nodes: the kubelet's slices under another. */
	{"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
	 "kubelet-kubepods-besteffort-pod" UID_ ".slice/cri-containerd-" CID ".scope",
	 UID, CID},
	{"/system.slice/docker-" CID ".scope/kubepods/burstable/pod" UID "/" CID, UID, CID},
	/* Seen from a private cgroup namespace. */
	{"/../../kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
	 ".slice/cri-containerd-" CID ".scope",
	 UID, CID},
	/* The container's own cgroups below it: still that container. */
	{"/kubepods/burstable/pod" UID "/" CID "/init.scope", UID, CID},
	/*
	 * A container that makes cgroups of its own cannot pass off another
	 * pod: the first pod from the root counts.
	 */
	{"/kubepods/burstable/pod" UID "/" CID
	 "/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	 UID, CID},
	{"/kubepods/burstable/pod" UID "/evil/pod11111111-2222-3333-4444-555555555555/" CID, UID,
	 ""},
	/* Not Kubernetes. */
	{"/", NULL, ""},
	{"/user.slice/user-1000.slice/session-2.scope", NULL, ""},
	{"/system.slice/containerd.service", NULL, ""},
	{"/system.slice/docker-" CID ".scope", NULL, ""},
	{"/kubepods", NULL, ""},
	{"/kubepods/burstable", NULL, ""},
	/* A pod-looking name outside any kubepods cgroup. */
	{"/pod" UID "/" CID, NULL, ""},
	{"/machine.slice/kubepods-pod" UID_ ".slice/" CID, NULL, ""},
	/* Almost a pod: wrong separators, lengths, case, or characters. */
	{"/kubepods/burstable/pod" UID_ "/" CID, NULL, ""},
	{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID ".slice", NULL, ""},
	{"/kubepods/burstable/pod6D3A1E2B-8C4F-4A5E-9B7D-0F1E2D3C4B5A/" CID, NULL, ""},
	{"/kubepods/burstable/pod6d3a1e2b-8c4f-4a5e-9b7d-0f1e2d3c4b5/" CID, NULL, ""},
	{"/kubepods/burstable/pod6d3a1e2b-8c4f-4a5e-9b7d-0f1e2d3c4b5aa/" CID, NULL, ""},
	{"/kubepods/burstable/pod6d3a1e2b-8c4f-4a5e-9b7d-0f1e2d3c4bzz/" CID, NULL, ""},
	{"/kubepods/burstable/pod" UID "x/" CID, NULL, ""},
	{"/kubepods/burstable/pod/" CID, NULL, ""},
	{"/kubepods.slice/kubepods-burstable.slice/burstable-pod" UID_ ".slice/" CID, NULL, ""},
	/* Almost a container: the pod stays, the id does not. */
	{"/kubepods/burstable/pod" UID "/" CID_UPPER, UID, ""},
	{"/kubepods/burstable/pod" UID "/" CID "0", UID, ""},
	{"/kubepods/burstable/pod" UID "/cri-containerd-" CID ".scope.scope", UID, ""},
	{"/kubepods/burstable/pod" UID "/podman-" CID ".scope", UID, ""},
	{"/kubepods/burstable/pod" UID "/\"},evil=\"" CID, UID, ""},
};

static void test_kube_shapes(void)
{
	for (size_t i = 0; i < sizeof(kube_cases) / sizeof(kube_cases[0]); i++) {
		const struct kube_case *c = &kube_cases[i];
		char pod[HF_POD_UID_LEN] = "x", container[HF_CONTAINER_ID_LEN] = "x";
		bool got = hf_cgroup_kube(c->path, strlen(c->path), pod, container);

		CHECK_MSG(got == (c->pod != NULL), "%s: pod %s", c->path, got ? "found" : "missed");
		CHECK_MSG(strcmp(pod, c->pod ? c->pod : "") == 0, "%s: pod \"%s\"", c->path, pod);
		CHECK_MSG(strcmp(container, c->container) == 0, "%s: container \"%s\"", c->path,
			  container);
	}
}

static int parse(const char *text, struct hf_cgroup *cg)
{
	return hf_cgroup_parse(text, strlen(text), cg);
}

/* Which line of /proc/PID/cgroup names the process. */
static void test_lines(void)
{
	struct hf_cgroup cg;

	/* v2 only. */
	CHECK(parse("0::/system.slice/redis.service\n", &cg) == 0);
	CHECK_STR_EQ(cg.path, "/system.slice/redis.service");
	CHECK_STR_EQ(cg.pod_uid, "");
	CHECK_STR_EQ(cg.container_id, "");
	/* The last line needs no newline. */
	CHECK(parse("0::/a", &cg) == 0 && strcmp(cg.path, "/a") == 0);

	/* Hybrid: v2 preferred over every v1 line. */
	CHECK(parse("12:memory:/mem\n1:name=systemd:/user.slice\n0::/user.slice/x.scope\n", &cg) ==
	      0);
	CHECK_STR_EQ(cg.path, "/user.slice/x.scope");

	/* v1 only: name=systemd, then memory, then the first line. */
	CHECK(parse("4:cpu,cpuacct:/c\n3:memory:/m\n1:name=systemd:/s\n", &cg) == 0);
	CHECK_STR_EQ(cg.path, "/s");
	CHECK(parse("4:cpu,cpuacct:/c\n3:memory:/m\n", &cg) == 0);
	CHECK_STR_EQ(cg.path, "/m");
	CHECK(parse("4:cpu,cpuacct:/c\n3:pids:/p\n", &cg) == 0);
	CHECK_STR_EQ(cg.path, "/c");
	/* "memory" is a controller name, not a substring of one. */
	CHECK(parse("4:cpu:/c\n3:memory_x:/m\n", &cg) == 0);
	CHECK_STR_EQ(cg.path, "/c");

	/*
	 * Hybrid with the cgroupfs driver: the runtime left the process at v2's
	 * root; the v1 lines name the pod, and that is the line taken.
	 */
	CHECK(parse("9:name=systemd:/kubepods/burstable/pod" UID "/" CID
		    "\n4:memory:/kubepods/burstable/pod" UID "/" CID "\n0::/\n",
		    &cg) == 0);
	CHECK_STR_EQ(cg.path, "/kubepods/burstable/pod" UID "/" CID);
	CHECK_STR_EQ(cg.pod_uid, UID);
	CHECK_STR_EQ(cg.container_id, CID);
	/* v2 in Kubernetes' shape wins over v1 in it too. */
	CHECK(parse("4:memory:/kubepods/pod" STATIC "/" CID "\n0::/kubepods.slice/kubepods-pod" UID_
		    ".slice/docker-" CID ".scope\n",
		    &cg) == 0);
	CHECK_STR_EQ(cg.pod_uid, UID);
	/* This machine's shape: v1 controllers, a v2 line at the root. */
	CHECK(parse("9:name=systemd:/\n8:pids:/\n4:memory:/process_api/ca42bea7\n3:cpuset:/\n0::/"
		    "\n",
		    &cg) == 0);
	CHECK_STR_EQ(cg.path, "/");
}

/* Lines the parser must skip, and files with nothing usable. */
static void test_malformed(void)
{
	struct hf_cgroup cg;
	static const char nul_inside[] = "0::/a\0b\n1:name=systemd:/ok\n";

	CHECK(parse("", &cg) == -EINVAL && cg.path[0] == '\0');
	CHECK(parse("\n\n\n", &cg) == -EINVAL);
	CHECK(parse("garbage\n", &cg) == -EINVAL);
	CHECK(parse("0:/nopath\n", &cg) == -EINVAL);
	CHECK(parse("x::/a\n", &cg) == -EINVAL);
	CHECK(parse("::/a\n", &cg) == -EINVAL);
	CHECK(parse("0::relative\n", &cg) == -EINVAL);
	CHECK(parse("0::\n", &cg) == -EINVAL);
	/* A line with a NUL in it is skipped, not cut short. */
	CHECK(hf_cgroup_parse(nul_inside, sizeof(nul_inside) - 1, &cg) == 0);
	CHECK_STR_EQ(cg.path, "/ok");
	/* Colons in the path are the path's. */
	CHECK(parse("0::/a:b:c\n", &cg) == 0);
	CHECK_STR_EQ(cg.path, "/a:b:c");
	/* The first v2 line counts; a second is never taken for it. */
	CHECK(parse("0::/first\n0::/kubepods/pod" UID "/" CID "\n", &cg) == 0);
	CHECK_STR_EQ(cg.path, "/first");
	CHECK_STR_EQ(cg.pod_uid, "");
	/* Only the given length is read. */
	CHECK(hf_cgroup_parse("0::/abc\n0::/kubepods", 7, &cg) == 0);
	CHECK_STR_EQ(cg.path, "/abc");
}

/* Names a container may give its own cgroups: served printable, never as labels. */
static void test_hostile_names(void)
{
	struct hf_cgroup cg;
	char text[4 * HF_CGROUP_LEN];
	size_t n;

	/* Quotes, backslashes and braces pass through: the writers escape them. */
	CHECK(parse("0::/kubepods/burstable/pod" UID "/" CID "/a\"b\\c},x=\"y\n", &cg) == 0);
	CHECK_STR_EQ(cg.path, "/kubepods/burstable/pod" UID "/" CID "/a\"b\\c},x=\"y");
	CHECK_STR_EQ(cg.container_id, CID);
	/* Control characters and bytes that start no UTF-8 sequence become '?'. */
	CHECK(parse("0::/a\rb\tc\x1b[31m\x7f\n", &cg) == 0);
	CHECK_STR_EQ(cg.path, "/a?b?c?[31m?");
	CHECK(parse("0::/\xff\xfe/\xc3\x28/\xe2\x82/\xf0\x9f\x98\x80/\xc3\xa9\n", &cg) == 0);
	/* Split where "??/" would read as a trigraph. */
	CHECK_STR_EQ(cg.path, "/??"
			      "/?(/??"
			      "/\xf0\x9f\x98\x80/\xc3\xa9");
	/* Overlong encodings and surrogates are not valid UTF-8. */
	CHECK(parse("0::/\xc0\xaf\xe0\x80\xaf\xed\xa0\x80\xf4\x90\x80\x80\n", &cg) == 0);
	CHECK_STR_EQ(cg.path, "/????????????");

	/* A path that fits exactly, and one a byte longer: unknown, not cut. */
	n = (size_t)snprintf(text, sizeof(text), "0::/");
	memset(text + n, 'a', HF_CGROUP_LEN - 2);
	text[n + HF_CGROUP_LEN - 2] = '\0';
	CHECK(parse(text, &cg) == 0);
	CHECK(strlen(cg.path) == HF_CGROUP_LEN - 1);
	strcat(text, "a");
	CHECK(parse(text, &cg) == 0);
	CHECK_STR_EQ(cg.path, "");
	/* A '?' standing for a byte still counts a byte of room. */
	memset(text + n, '\xff', HF_CGROUP_LEN - 2);
	text[n + HF_CGROUP_LEN - 2] = '\0';
	CHECK(parse(text, &cg) == 0 && strlen(cg.path) == HF_CGROUP_LEN - 1);

	/* A huge path still names its pod: the pod is read before the cut. */
	n = (size_t)snprintf(text, sizeof(text), "0::/kubepods/burstable/pod" UID "/" CID "/");
	memset(text + n, 'z', sizeof(text) - n - 1);
	text[sizeof(text) - 1] = '\0';
	CHECK(parse(text, &cg) == 0);
	CHECK_STR_EQ(cg.path, "");
	CHECK_STR_EQ(cg.pod_uid, UID);
	CHECK_STR_EQ(cg.container_id, CID);
}

/* This process's own file, through the reader. */
static void test_read_self(void)
{
	struct hf_cgroup cg;

	CHECK(hf_cgroup_read(getpid(), &cg) == 0);
	CHECK(cg.path[0] == '/');
	CHECK(hf_cgroup_read(0x3ffffff0, &cg) == -ESRCH);
}

int main(void)
{
	test_kube_shapes();
	test_lines();
	test_malformed();
	test_hostile_names();
	test_read_self();
	return hf_test_done();
}
