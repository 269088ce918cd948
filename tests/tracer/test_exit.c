// SPDX-License-Identifier: MIT
/*
 * A target killed in the middle of its phase stays listed with state
 * "exited" and its last counts, for --retention seconds, then is gone; the
 * daemon keeps serving.  A recycled PID is a new process: attached again
 * (POST), the new process under the same PID is listed running with its own
 * start time and an account of its own, beside the exited one.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

static bool some_calls(json_t *doc, void *arg)
{
	return th_u64(doc, "counters.malloc") > 1000;
}

static bool exited(json_t *doc, void *arg)
{
	const char *state = json_string_value(json_object_get(doc, "state"));

	return state && strcmp(state, "exited") == 0;
}

static void killed_mid_phase(void)
{
	const char *args[] = {"--count", "1000000000", NULL};
	const char *dargs[] = {"-i", "0.2", "--retention", "2", NULL};
	struct th_workload w;
	struct th_daemon d;
	char path[64];
	json_t *doc, *again;
	long status;

	if (th_start_traced(&w, "seed_loop", args, NULL, &d, dargs) != 0) {
		CHECK_MSG(0, "seed_loop under heapfragd did not start");
		return;
	}
	th_workload_go(&w);
	json_decref(th_wait_doc(&d, w.pid, some_calls, NULL, 10));
	th_workload_kill(&w);

	doc = th_wait_doc(&d, w.pid, exited, NULL, 5);
	CHECK_MSG(doc && exited(doc, NULL), "the killed process is not listed as exited");
	CHECK_MSG(th_u64(doc, "counters.malloc") > 1000, "its counts were lost");
	/* Nothing moves any more. */
	usleep(500 * 1000);
	again = th_wait_doc(&d, w.pid, NULL, NULL, 1);
	CHECK_EQ_U64(th_u64(again, "counters.malloc"), th_u64(doc, "counters.malloc"));
	json_decref(again);
	json_decref(doc);

	/* --retention 2: gone within a few intervals after that. */
	sleep(3);
	snprintf(path, sizeof(path), "/api/v1/processes/%d", (int)w.pid);
	json_decref(th_get(&d, path, &status));
	CHECK_MSG(status == 404, "still listed %ld after the retention", status);
	json_decref(th_get(&d, "/healthz", &status));
	CHECK_EQ_U64(status, 200);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
}

/* Starts seed_loop as PID want, through ns_last_pid; false if another process won the race. */
static bool start_with_pid(struct th_workload *w, pid_t want)
{
	const char *args[] = {"--count", "1000", NULL};
	char buf[32];
	int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);

	if (fd < 0)
		return false;
	snprintf(buf, sizeof(buf), "%d", (int)want - 1);
	if (write(fd, buf, strlen(buf)) < 0) {
		close(fd);
		return false;
	}
	close(fd);
	if (th_workload_start(w, "seed_loop", args, NULL) != 0)
		return false;
	if (w->pid == want)
		return true;
	th_workload_kill(w);
	return false;
}

static void recycled_pid(void)
{
	const char *args[] = {"--count", "500", NULL};
	const char *dargs[] = {"-i", "0.2", "--retention", "60", "-p", NULL, NULL};
	struct th_workload a, b;
	struct th_daemon d;
	char pid_arg[16], body[64];
	json_t *truth, *doc, *list;
	double a_start;
	size_t n_same = 0, i;
	json_t *item;
	long status;
	bool got = false;

	if (th_workload_start(&a, "seed_loop", args, NULL) != 0) {
		CHECK_MSG(0, "seed_loop did not start");
		return;
	}
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)a.pid);
	dargs[5] = pid_arg;
	if (th_daemon_start(&d, dargs) != 0) {
		CHECK_MSG(0, "heapfragd did not start");
		th_workload_kill(&a);
		return;
	}
	th_workload_go(&a);
	json_decref(th_workload_truth(&a));
	th_workload_finish(&a);
	doc = th_wait_doc(&d, a.pid, exited, NULL, 5);
	CHECK_MSG(doc && exited(doc, NULL), "the first process is not listed as exited");
	a_start = json_number_value(json_object_get(doc, "start_time"));
	json_decref(doc);

	for (int tries = 0; tries < 50 && !got; tries++)
		got = start_with_pid(&b, a.pid);
	if (!got) {
		CHECK_MSG(0, "could not recycle PID %d through ns_last_pid", (int)a.pid);
		th_daemon_stop(&d);
		return;
	}
	/* The new process is not traced just because its PID was. */
	snprintf(body, sizeof(body), "{\"pid\":%d,\"mode\":\"exact\"}", (int)b.pid);
	json_decref(th_post(&d, "/api/v1/processes", body, &status));
	CHECK_EQ_U64(status, 201);
	th_workload_go(&b);
	truth = th_workload_truth(&b);
	doc = th_wait_doc(&d, b.pid, some_calls, NULL, 0.1);
	json_decref(doc);
	sleep(1);
	doc = th_wait_doc(&d, b.pid, NULL, NULL, 5);
	CHECK_STR_EQ(json_string_value(json_object_get(doc, "state")), "running");
	CHECK_MSG(json_number_value(json_object_get(doc, "start_time")) > a_start,
		  "the recycled PID kept the old start time");
	/* Its own account: 1000 pairs, not the first process's 500 plus them. */
	CHECK_EQ_U64(th_u64(doc, "counters.malloc"), th_u64(truth, "calls.malloc"));
	CHECK_EQ_U64(th_u64(doc, "counters.malloc"), 1000);
	json_decref(doc);
	json_decref(truth);

	list = th_get(&d, "/api/v1/processes", &status);
	json_array_foreach(json_is_array(list) ? list : json_object_get(list, "processes"), i, item)
		n_same += th_u64(item, "pid") == (uint64_t)a.pid;
	CHECK_MSG(n_same == 2, "%zu entries for PID %d, expected the exited and the new one",
		  n_same, (int)a.pid);
	json_decref(list);
	th_workload_finish(&b);
	CHECK_EQ_U64(th_daemon_stop(&d), 0);
}

int main(void)
{
	th_init("tracer_exit", 120);
	killed_mid_phase();
	recycled_pid();
	return hf_test_done();
}
