// SPDX-License-Identifier: MIT
/*
 * test_web_tls.c - heapfragd with --tls-cert, --tls-key and --token-file,
 * listening beyond loopback: the port speaks HTTPS only, with the
 * certificate made here by openssl for this run (no key is committed);
 * data routes need the bearer token and say so in one sentence, while the
 * pages and /healthz stay open; the curl command line and a real Prometheus
 * (authorization.credentials_file, tls_config.ca_file) read the right
 * numbers, and Prometheus with a wrong token or without the CA gets none.
 * The same daemon listening on loopback alone serves reads without a token.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "check.h"
#include "web_harness.h"

#define N_ALLOCS 3000
#define TOKEN    "tls-test-token-4f1c9a"

static char dir_ca[600], dir_cert[600], dir_key[600], dir_token[600], dir_wrong[600];
static int hf_port;

static int run(const char *cmd)
{
	int status = system(cmd);

	CHECK_MSG(status == 0, "`%s` failed (%d)", cmd, status);
	return status;
}

/* A CA and a server certificate for 127.0.0.1 signed by it, made with openssl. */
static int make_certificates(const char *dir)
{
	char cmd[4096];

	snprintf(dir_ca, sizeof(dir_ca), "%s/ca.pem", dir);
	snprintf(dir_cert, sizeof(dir_cert), "%s/server.pem", dir);
	snprintf(dir_key, sizeof(dir_key), "%s/server.key", dir);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
		 "-subj /CN=heapfrag-test-ca -keyout ca.key -out ca.pem 2>openssl.log && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-subj /CN=localhost -keyout server.key -out server.csr 2>>openssl.log && "
		 "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n"
		 "basicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf && "
		 "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		 "-days 1 -extfile ext.cnf -out server.pem 2>>openssl.log",
		 dir);
	return run(cmd);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK_MSG(f != NULL, "cannot write %s", path);
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
}

static struct http_reply get(const char *path, const char *auth)
{
	char url[256];

	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", hf_port, path);
	return http_do("GET", url, NULL, 0, auth);
}

/* 401, error "unauthorized", the one sentence, and the Bearer challenge. */
static void expect_401(const char *method, const char *path, const char *auth, const char *message)
{
	char url[256];
	struct http_reply r;
	json_t *j;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", hf_port, path);
	r = http_do(method, url, strcmp(method, "POST") ? NULL : "{}",
		    strcmp(method, "POST") ? 0 : 2, auth);
	j = http_json(&r);
	CHECK_MSG(r.status == 401, "%s %s (%s): %ld %s", method, path, auth ? auth : "no token",
		  r.status, r.body);
	CHECK_STR_EQ(json_string_value(json_object_get(j, "error")), "unauthorized");
	CHECK_STR_EQ(json_string_value(json_object_get(j, "message")), message);
	CHECK_STR_EQ(http_header(&r, "WWW-Authenticate"), "Bearer realm=\"heapfragd\"");
	json_decref(j);
	http_free(&r);
}

static json_int_t malloc_calls(pid_t w)
{
	char path[64];
	struct http_reply r;
	json_int_t v = -1;
	json_t *j;

	snprintf(path, sizeof(path), "/api/v1/processes/%d", (int)w);
	r = get(path, "Authorization: Bearer " TOKEN);
	j = http_json(&r);
	if (r.status == 200 && json_is_integer(json_at(j, "counters.malloc")))
		v = json_integer_value(json_at(j, "counters.malloc"));
	json_decref(j);
	http_free(&r);
	return v;
}

static void test_plain_http_and_untrusted_certificates_get_no_answer(void)
{
	char url[128];
	struct http_reply r;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", hf_port);
	r = http_get(url);
	CHECK_MSG(r.status == 0, "plain HTTP was answered with %ld", r.status);
	http_free(&r);
	/* Without our CA, the system's trust store does not know the certificate. */
	http_use_tls(NULL);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/healthz", hf_port);
	r = http_get(url);
	CHECK_MSG(r.status == 0, "a certificate no CA vouches for was accepted (%ld)", r.status);
	http_free(&r);
	http_use_tls(dir_ca);
}

static void test_data_needs_the_token_pages_and_health_do_not(pid_t w)
{
	char path[64], body[64], url[128];
	struct http_reply r;

	snprintf(path, sizeof(path), "/api/v1/processes/%d", (int)w);
	expect_401("GET", "/metrics", NULL, "This route needs an Authorization: Bearer token.");
	expect_401("GET", "/api/v1/processes", NULL,
		   "This route needs an Authorization: Bearer token.");
	expect_401("GET", path, NULL, "This route needs an Authorization: Bearer token.");
	expect_401("GET", "/metrics", "Authorization: Bearer wrong", "The bearer token is wrong.");
	expect_401("GET", path, "Authorization: Bearer " TOKEN "x", "The bearer token is wrong.");
	expect_401("GET", path, "Authorization: Basic " TOKEN, "The bearer token is wrong.");
	expect_401("POST", "/api/v1/processes", NULL,
		   "This route needs an Authorization: Bearer token.");
	expect_401("DELETE", path, "Authorization: Bearer nope", "The bearer token is wrong.");

	r = get("/healthz", NULL);
	CHECK_MSG(r.status == 200, "/healthz without a token: %ld", r.status);
	http_free(&r);
	/* The dashboard's pages and assets: no data, so no token. */
	snprintf(url, sizeof(url), "/processes/%d", (int)w);
	{
		const char *pages[] = {"/", url, "/assets/common.js", "/assets/dashboard.css"};

		for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
			r = get(pages[i], NULL);
			CHECK_MSG(r.status == 200, "%s without a token: %ld", pages[i], r.status);
			http_free(&r);
		}
	}

	/* The scheme name is case-insensitive (RFC 9110). */
	r = get("/metrics", "Authorization: bearer " TOKEN);
	CHECK_MSG(r.status == 200, "/metrics with the token: %ld %s", r.status, r.body);
	CHECK_MSG(strstr(r.body, "heapfrag_allocator_calls_total{") != NULL,
		  "the scrape has no allocator calls");
	http_free(&r);
	CHECK_MSG(malloc_calls(w) == N_ALLOCS, "malloc calls %lld over HTTPS, the workload made %d",
		  (long long)malloc_calls(w), N_ALLOCS);
	/* A write with the token: attaching twice is refused as such, not as unauthorised. */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/api/v1/processes", hf_port);
	snprintf(body, sizeof(body), "{\"pid\":%d}", (int)w);
	r = http_do("POST", url, body, strlen(body), "Authorization: Bearer " TOKEN);
	CHECK_MSG(r.status == 409, "POST of a traced process with the token: %ld %s", r.status,
		  r.body);
	http_free(&r);
}

/* The curl command line, as the README shows it, with and without the token. */
static void test_curl_command_line(const char *dir)
{
	char cmd[2048], out[600];
	char code[8] = "";
	FILE *f;

	snprintf(out, sizeof(out), "%s/curl.out", dir);
	snprintf(cmd, sizeof(cmd),
		 "curl -sS --cacert '%s' -H \"Authorization: Bearer $(cat '%s')\" "
		 "https://127.0.0.1:%d/metrics -o '%s'",
		 dir_ca, dir_token, hf_port, out);
	if (run(cmd) == 0) {
		char line[4096];
		bool found = false;

		f = fopen(out, "r");
		while (f && fgets(line, sizeof(line), f))
			found |= strncmp(line, "heapfrag_build_info{", 20) == 0;
		if (f)
			fclose(f);
		CHECK_MSG(found, "curl's scrape has no heapfrag_build_info");
	}
	snprintf(cmd, sizeof(cmd),
		 "curl -sS --cacert '%s' -o /dev/null -w '%%{http_code}' "
		 "https://127.0.0.1:%d/metrics",
		 dir_ca, hf_port);
	f = popen(cmd, "r");
	if (f) {
		if (!fgets(code, sizeof(code), f))
			code[0] = '\0';
		pclose(f);
	}
	CHECK_STR_EQ(code, "401");

	/*
	 * TLS 1.2 and 1.3 only: a client that speaks at most 1.1 gets no
	 * handshake.  OpenSSL's security level 0 lets this curl offer 1.0 and
	 * 1.1 at all, so that the refusal is the server's.
	 */
	snprintf(cmd, sizeof(cmd),
		 "curl -sS --cacert '%s' --tlsv1 --tls-max 1.1 --ciphers 'DEFAULT@SECLEVEL=0' "
		 "-o /dev/null https://127.0.0.1:%d/healthz 2>/dev/null",
		 dir_ca, hf_port);
	CHECK_MSG(system(cmd) != 0, "a TLS 1.1 client was served");
	snprintf(cmd, sizeof(cmd),
		 "curl -sS --cacert '%s' --tlsv1.2 --tls-max 1.2 -o /dev/null "
		 "https://127.0.0.1:%d/healthz",
		 dir_ca, hf_port);
	CHECK_MSG(run(cmd) == 0, "a TLS 1.2 client was not served");
}

/* The last scrape error Prometheus reports for job, in a static buffer. */
static const char *last_error(int prom_port, const char *job)
{
	static char err[512];
	char url[128];
	struct http_reply r;
	json_t *j, *t;
	size_t i;

	err[0] = '\0';
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/targets", prom_port);
	r = http_get(url);
	j = http_json(&r);
	json_array_foreach(json_at(j, "data.activeTargets"), i, t)
	{
		if (strcmp(json_string_value(json_at(t, "labels.job")) ?: "", job) == 0)
			snprintf(err, sizeof(err), "%s",
				 json_string_value(json_object_get(t, "lastError")) ?: "");
	}
	json_decref(j);
	http_free(&r);
	return err;
}

static void test_prometheus_scrapes_over_https_with_the_token(const char *dir, pid_t w)
{
	char log[512], jobs[4096], q[256];
	double mallocs = -1, up = -1, up_wrong = -1, up_noca = -1, end;
	int prom_port;
	pid_t prom;

	snprintf(jobs, sizeof(jobs),
		 "  - job_name: heapfrag\n"
		 "    scheme: https\n"
		 "    authorization:\n"
		 "      credentials_file: %s\n"
		 "    tls_config:\n"
		 "      ca_file: %s\n"
		 "    static_configs:\n"
		 "      - targets: ['127.0.0.1:%d']\n"
		 "  - job_name: heapfrag_wrong_token\n"
		 "    scheme: https\n"
		 "    authorization:\n"
		 "      credentials_file: %s\n"
		 "    tls_config:\n"
		 "      ca_file: %s\n"
		 "    static_configs:\n"
		 "      - targets: ['127.0.0.1:%d']\n"
		 "  - job_name: heapfrag_without_ca\n"
		 "    scheme: https\n"
		 "    authorization:\n"
		 "      credentials_file: %s\n"
		 "    static_configs:\n"
		 "      - targets: ['127.0.0.1:%d']\n",
		 dir_token, dir_ca, hf_port, dir_wrong, dir_ca, hf_port, dir_token, hf_port);
	snprintf(log, sizeof(log), "%s/prometheus.log", dir);
	prom = harness_start_prometheus(dir, jobs, &prom_port);
	CHECK_MSG(prom > 0, "Prometheus did not start (see %s)", log);
	if (prom <= 0)
		return;
	snprintf(q, sizeof(q),
		 "heapfrag_allocator_calls_total{job=\"heapfrag\",pid=\"%d\",op=\"malloc\"}",
		 (int)w);
	for (end = harness_now() + 45; harness_now() < end;) {
		mallocs = harness_promql(prom_port, q);
		up_wrong = harness_promql(prom_port, "up{job=\"heapfrag_wrong_token\"}");
		up_noca = harness_promql(prom_port, "up{job=\"heapfrag_without_ca\"}");
		if (mallocs == N_ALLOCS && up_wrong == 0 && up_noca == 0)
			break;
		usleep(500 * 1000);
	}
	up = harness_promql(prom_port, "up{job=\"heapfrag\"}");
	CHECK_MSG(up == 1, "up{job=\"heapfrag\"} = %g (%s)", up, last_error(prom_port, "heapfrag"));
	CHECK_MSG(mallocs == N_ALLOCS, "PromQL %s = %g, the workload made %d", q, mallocs,
		  N_ALLOCS);
	CHECK_MSG(up_wrong == 0, "up with a wrong token = %g", up_wrong);
	CHECK_MSG(strstr(last_error(prom_port, "heapfrag_wrong_token"), "401") != NULL,
		  "the wrong token's scrape error is \"%s\"",
		  last_error(prom_port, "heapfrag_wrong_token"));
	CHECK_MSG(up_noca == 0, "up without the CA = %g", up_noca);
	CHECK_MSG(strstr(last_error(prom_port, "heapfrag_without_ca"), "certificate") != NULL,
		  "the scrape without the CA failed with \"%s\"",
		  last_error(prom_port, "heapfrag_without_ca"));
	if (hf_checks_failed)
		harness_show_log(log);
	harness_stop(prom);
}

/* On loopback alone, the same token guards writes only: reads are open. */
static void test_on_loopback_reads_stay_open(const char *log, pid_t w)
{
	char pid_arg[16], listen[64], url[128];
	char *extra[] = {"--tls-cert", dir_cert, "--tls-key", dir_key, "--token-file",
			 dir_token,    "-p",     pid_arg,     NULL};
	struct http_reply r;
	int port = harness_free_port();
	pid_t d;

	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)w);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	d = harness_start_daemon(listen, port, extra, log);
	CHECK_MSG(d > 0, "heapfragd on loopback did not start; see %s", log);
	if (d <= 0)
		return;
	hf_port = port;
	r = get("/metrics", NULL);
	CHECK_MSG(r.status == 200, "/metrics on loopback without a token: %ld", r.status);
	http_free(&r);
	snprintf(url, sizeof(url), "/api/v1/processes/%d", (int)w);
	r = get(url, NULL);
	CHECK_MSG(r.status == 200, "%s on loopback without a token: %ld", url, r.status);
	http_free(&r);
	expect_401("DELETE", url, NULL, "This route needs an Authorization: Bearer token.");
	harness_stop(d);
}

int main(void)
{
	const char *why = harness_missing();
	char workload[1024], count[16], pid_arg[16], listen[64], log[512], *dir;
	char *wargv[] = {workload, "plateau", count, NULL};
	char *extra[] = {"--tls-cert", dir_cert, "--tls-key", dir_key, "--token-file",
			 dir_token,    "-p",     pid_arg,     NULL};
	json_int_t prev = -2, cur = -1;
	int out_fd = -1;
	pid_t d, w;

	if (why)
		HF_SKIP("%s", why);
	if (access("/usr/bin/prometheus", X_OK) || system("openssl version >/dev/null 2>&1"))
		HF_SKIP("Debian's prometheus and openssl packages are needed");
	dir = harness_tmpdir("web-tls");
	snprintf(log, sizeof(log), "%s/heapfragd.log", dir);
	snprintf(dir_token, sizeof(dir_token), "%s/token", dir);
	snprintf(dir_wrong, sizeof(dir_wrong), "%s/wrong-token", dir);
	write_file(dir_token, TOKEN "\n");
	write_file(dir_wrong, "not-" TOKEN "\n");
	if (make_certificates(dir))
		return hf_test_done();
	http_use_tls(dir_ca);

	snprintf(count, sizeof(count), "%d", N_ALLOCS);
	harness_build_path(workload, sizeof(workload), "tests/web_workload");
	w = harness_spawn(wargv, NULL, &out_fd);
	CHECK(harness_wait_line(out_fd, "ready", 10));
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)w);
	hf_port = harness_free_port();
	/* Every address: beyond loopback, so the token guards reads as well. */
	snprintf(listen, sizeof(listen), "0.0.0.0:%d", hf_port);
	d = harness_start_daemon(listen, hf_port, extra, log);
	CHECK_MSG(d > 0, "heapfragd with TLS did not start; see %s", log);
	if (d > 0) {
		kill(w, SIGUSR1);
		CHECK(harness_wait_line(out_fd, "done", 10));
		for (int i = 0; i < 40 && (cur != prev || cur < N_ALLOCS); i++) {
			usleep(700 * 1000);
			prev = cur;
			cur = malloc_calls(w);
		}
		test_plain_http_and_untrusted_certificates_get_no_answer();
		test_data_needs_the_token_pages_and_health_do_not(w);
		test_curl_command_line(dir);
		test_prometheus_scrapes_over_https_with_the_token(dir, w);
		harness_stop(d);
		test_on_loopback_reads_stay_open(log, w);
	}
	harness_stop(w);
	if (hf_checks_failed)
		harness_show_log(log);
	else
		harness_rmdir(dir);
	free(dir);
	return hf_test_done();
}
