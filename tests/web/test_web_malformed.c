// SPDX-License-Identifier: MIT
/*
 * test_web_malformed.c - hostile and broken traffic against the real
 * heapfragd while it traces a busy workload: random bytes, bad request lines,
 * 100 KB headers and URLs, negative and huge Content-Length, ".." and "%00"
 * in paths, broken chunking, slow half-open clients and one client address
 * opening more connections than its share.  Every request is answered or
 * closed, none reaches a file, and afterwards the daemon is healthy and the
 * workload's counters still advance.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "web_harness.h"

static int port;

enum outcome {
	ANSWERED, /* an HTTP response came back */
	CLOSED,   /* the server closed without a response */
	HUNG,     /* still open and silent when the test gave up */
};

static int connect_from(const char *src)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in from = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	inet_pton(AF_INET, src, &from.sin_addr);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&from, sizeof(from)) ||
	    connect(fd, (struct sockaddr *)&to, sizeof(to))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Reads until the server closes, or a response's headers are in and nothing
 * more comes for 300 ms, or timeout passes.
 */
static enum outcome read_outcome(int fd, char *resp, size_t len, double timeout)
{
	double end = harness_now() + timeout;
	size_t used = 0;

	resp[0] = '\0';
	while (harness_now() < end) {
		bool have_headers = strstr(resp, "\r\n\r\n") != NULL;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int ready = poll(&p, 1, have_headers ? 300 : 100);
		ssize_t n;

		if (ready == 0 && have_headers)
			return ANSWERED;
		if (ready <= 0)
			continue;
		n = recv(fd, resp + used, len - 1 - used, 0);
		if (n <= 0)
			return strncmp(resp, "HTTP/1.", 7) == 0 ? ANSWERED : CLOSED;
		used += (size_t)n;
		resp[used] = '\0';
		if (used == len - 1)
			return strncmp(resp, "HTTP/1.", 7) == 0 ? ANSWERED : CLOSED;
	}
	return HUNG;
}

/* Sends payload from 127.0.0.1, half-closes, and reports what came back. */
static enum outcome exchange(const void *payload, size_t len, char *resp, size_t resp_len)
{
	int fd = connect_from("127.0.0.1");
	enum outcome o;

	if (fd < 0)
		return CLOSED;
	/* The server may close before it has read everything: that is an answer too. */
	if (send(fd, payload, len, MSG_NOSIGNAL) < 0) {
		close(fd);
		return CLOSED;
	}
	shutdown(fd, SHUT_WR);
	o = read_outcome(fd, resp, resp_len, 15);
	close(fd);
	return o;
}

static int status_of(const char *resp)
{
	return strncmp(resp, "HTTP/1.", 7) == 0 ? atoi(resp + 9) : 0;
}

static void test_random_bytes_are_refused(void)
{
	static char resp[8192];
	unsigned int seed = 4242;
	char junk[4096];

	for (int round = 0; round < 20; round++) {
		enum outcome o;

		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (char)(rand_r(&seed) & 0xff);
		o = exchange(junk, sizeof(junk), resp, sizeof(resp));
		CHECK_MSG(o != HUNG, "random bytes, round %d: no answer and not closed", round);
		CHECK_MSG(o == CLOSED || status_of(resp) >= 400, "random bytes got %.40s", resp);
	}
}

static void test_bad_requests_get_errors(void)
{
	static const struct {
		const char *name;
		const char *text;
		int status; /* 0: any 4xx/5xx answer, or a close */
	} cases[] = {
		{"garbage line", "GARBAGE\r\n\r\n", 0},
		{"no version", "GET /healthz\r\n\r\n", 0},
		{"unknown version", "GET /healthz HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n", 505},
		{"no Host in 1.1", "GET /healthz HTTP/1.1\r\n\r\n", 400},
		{"empty lines", "\r\n\r\n\r\n\r\n", 0},
		{"space in method", "G T /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0},
		{"header without colon", "GET /healthz HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n", 400},
		{"negative length",
		 "POST /api/v1/processes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
		 400},
		{"overflowing length",
		 "POST /api/v1/processes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
		 "99999999999999999999999\r\n\r\n",
		 413},
		{"huge length",
		 "POST /api/v1/processes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
		 "18446744073709551615\r\n\r\n",
		 413},
		{"length past the limit",
		 "POST /api/v1/processes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
		 "1000000000\r\n\r\n",
		 413},
		{"length not a number",
		 "POST /api/v1/processes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
		 "1e3\r\n\r\n",
		 400},
		{"two lengths",
		 "POST /api/v1/processes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
		 "Content-Length: 700000\r\n\r\n12345",
		 0},
		{"bad chunk",
		 "POST /api/v1/processes HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: "
		 "chunked\r\n\r\n"
		 "ZZZ\r\n",
		 400},
		{"dot-dot", "GET /../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400},
		{"dot-dot inside",
		 "GET /api/v1/../../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400},
		{"encoded dot-dot",
		 "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400},
		{"encoded NUL", "GET /api/v1/processes/1%00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
		 400},
		{"encoded NUL in file", "GET /metrics%00.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
		 400},
		{"absolute URL", "GET http://x/etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
		 400},
		{"backslashes", "GET /..\\..\\etc\\passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
		 400},
		/* A page whose own name was rebound to 127.0.0.1 sends that name. */
		{"rebound Host", "GET /api/v1/processes HTTP/1.1\r\nHost: evil.example:80\r\n\r\n",
		 403},
		{"cross-origin write",
		 "POST /api/v1/processes HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: "
		 "http://evil.example\r\n"
		 "Content-Type: text/plain\r\nContent-Length: 9\r\n\r\n{\"pid\":1}",
		 403},
		{"cross-site write",
		 "DELETE /api/v1/processes/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: "
		 "cross-site\r\n\r\n",
		 403},
		{"HEAD", "HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 200},
		{"HEAD of a page", "HEAD /processes/1 HTTP/1.1\r\nHost: localhost\r\n\r\n", 200},
	};
	static char resp[16384];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum outcome o = exchange(cases[i].text, strlen(cases[i].text), resp, sizeof(resp));
		int status = status_of(resp);

		CHECK_MSG(o != HUNG, "%s: no answer and not closed", cases[i].name);
		if (cases[i].status)
			CHECK_MSG(o == ANSWERED && status == cases[i].status,
				  "%s: want %d, got %.60s", cases[i].name, cases[i].status, resp);
		else
			CHECK_MSG(o == CLOSED || status >= 400, "%s: got %.60s", cases[i].name,
				  resp);
		/* Whatever the path, no file is ever served. */
		CHECK_MSG(!strstr(resp, "root:"), "%s: served a file", cases[i].name);
	}
}

static void test_100k_headers_and_urls_are_refused(void)
{
	static char req[120 * 1024], resp[8192];
	enum outcome o;
	int n;

	n = snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
	memset(req + n, 'a', 100 * 1024);
	strcpy(req + n + 100 * 1024, "\r\n\r\n");
	o = exchange(req, strlen(req), resp, sizeof(resp));
	CHECK_MSG(o == ANSWERED && status_of(resp) == 431, "100 KB header: %.60s", resp);

	n = snprintf(req, sizeof(req), "GET /");
	memset(req + n, 'a', 100 * 1024);
	strcpy(req + n + 100 * 1024, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
	o = exchange(req, strlen(req), resp, sizeof(resp));
	CHECK_MSG(o == ANSWERED && status_of(resp) == 414, "100 KB URL: %.60s", resp);

	/* Many small headers adding up to 100 KB. */
	n = snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
	while (n < 100 * 1024)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "X-%d: %s\r\n", n,
			      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	o = exchange(req, strlen(req), resp, sizeof(resp));
	CHECK_MSG(o == ANSWERED && status_of(resp) == 431, "many headers: %.60s", resp);
}

static bool healthz_quick(double limit)
{
	char url[128];
	struct http_reply r;
	bool ok;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port);
	r = http_get(url);
	ok = r.status == 200 && r.seconds < limit;
	if (!ok)
		fprintf(stderr, "healthz: status %ld after %.2f s\n", r.status, r.seconds);
	http_free(&r);
	return ok;
}

/*
 * Slow clients: twenty connections that trickle a header every two seconds
 * from 127.0.0.2, and forty more from 127.0.0.3 than its per-client share,
 * do not keep 127.0.0.1 from being served at once.
 */
static void test_slow_and_greedy_clients_do_not_starve_others(void)
{
	static const char start[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
	int slow[20], greedy[40], refused = 0;
	char resp[256];

	for (int i = 0; i < 20; i++) {
		slow[i] = connect_from("127.0.0.2");
		CHECK(slow[i] >= 0 && send(slow[i], start, strlen(start), MSG_NOSIGNAL) > 0);
	}
	for (int round = 0; round < 3; round++) {
		CHECK_MSG(healthz_quick(1.0), "slowloris round %d: /healthz was slow", round);
		sleep(2);
		for (int i = 0; i < 20; i++)
			CHECK(send(slow[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL) > 0);
	}
	for (int i = 0; i < 40; i++)
		greedy[i] = connect_from("127.0.0.3");
	sleep(1);
	/* The server drops what is beyond one address's share at once. */
	for (int i = 0; i < 40; i++) {
		struct pollfd p = {.fd = greedy[i], .events = POLLIN};

		if (greedy[i] < 0 || (poll(&p, 1, 0) == 1 && recv(greedy[i], resp, 1, 0) <= 0))
			refused++;
	}
	CHECK_MSG(refused >= 8, "only %d of 40 connections from one address were refused", refused);
	CHECK(healthz_quick(1.0));
	for (int i = 0; i < 40; i++)
		if (greedy[i] >= 0)
			close(greedy[i]);
	for (int i = 0; i < 20; i++)
		close(slow[i]);
}

/* Idle and half-sent connections are closed by the server's idle timeout (10 s). */
static void test_half_open_clients_are_timed_out(void)
{
	int idle = connect_from("127.0.0.4");
	int half = connect_from("127.0.0.4");
	double start = harness_now();
	char resp[256];
	enum outcome a, b;

	CHECK(idle >= 0 && half >= 0);
	CHECK(send(half, "GET /heal", 9, MSG_NOSIGNAL) == 9);
	a = read_outcome(idle, resp, sizeof(resp), 16);
	b = read_outcome(half, resp, sizeof(resp), 16 - (harness_now() - start));
	CHECK_MSG(a == CLOSED, "an idle connection stayed open for %.1f s", harness_now() - start);
	CHECK_MSG(b == CLOSED, "a half-sent request stayed open");
	CHECK(harness_now() - start < 15);
	close(idle);
	close(half);
}

static json_int_t mallocs(pid_t w)
{
	char url[128];
	struct http_reply r;
	json_int_t v = -1;
	json_t *j;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/processes/%d", port, (int)w);
	r = http_get(url);
	j = http_json(&r);
	if (json_is_integer(json_at(j, "counters.malloc")))
		v = json_integer_value(json_at(j, "counters.malloc"));
	json_decref(j);
	http_free(&r);
	return v;
}

int main(void)
{
	const char *why = harness_missing();
	char workload[1024], pid_arg[16], log[512], *dir;
	char *wargv[] = {workload, "steady", NULL};
	char *extra[] = {"-p", pid_arg, NULL};
	json_int_t before, after;
	pid_t d, w;

	if (why)
		HF_SKIP("%s", why);
	dir = harness_tmpdir("web-malformed");
	snprintf(log, sizeof(log), "%s/heapfragd.log", dir);
	harness_build_path(workload, sizeof(workload), "tests/web_workload");
	w = harness_spawn(wargv, NULL, NULL);
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)w);
	port = harness_free_port();
	d = harness_start_daemon(NULL, port, extra, log);
	CHECK_MSG(d > 0, "heapfragd did not start; see %s", log);
	if (d > 0) {
		test_random_bytes_are_refused();
		test_bad_requests_get_errors();
		test_100k_headers_and_urls_are_refused();
		test_slow_and_greedy_clients_do_not_starve_others();
		test_half_open_clients_are_timed_out();

		/* Still healthy, still tracing. */
		CHECK(healthz_quick(1.0));
		before = mallocs(w);
		sleep(3);
		after = mallocs(w);
		CHECK_MSG(before > 0 && after > before + 1000, "malloc count %lld then %lld",
			  (long long)before, (long long)after);
		CHECK_MSG(kill(d, 0) == 0, "heapfragd died");
		harness_stop(d);
	}
	harness_stop(w);
	if (hf_checks_failed)
		harness_show_log(log);
	else
		harness_rmdir(dir);
	free(dir);
	return hf_test_done();
}
