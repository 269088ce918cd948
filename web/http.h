/* SPDX-License-Identifier: MIT */
/*
 * http.h - heapfragd's HTTP server: REST JSON API and Prometheus /metrics.
 *
 * The server runs on libmicrohttpd's own threads and reaches the daemon only
 * through struct hf_service, whose calls copy data out under the daemon's
 * lock, so HTTP load never stalls tracing.
 */
#ifndef HF_HTTP_H
#define HF_HTTP_H

#include "service.h"

struct hf_http_config {
	const char *listen;           /* "ADDR:PORT", IPv4 or [IPv6] */
	const char *token;            /* bearer token (auth.c says where it is needed), or NULL */
	const char *tls_cert_file;    /* PEM certificate chain: serve HTTPS only, or NULL */
	const char *tls_key_file;     /* its PEM private key (with tls_cert_file) */
	unsigned int max_connections; /* 0: 128 */
	unsigned int timeout_seconds; /* idle timeout; 0: 10 */
};

struct hf_http;

/*
 * Reads and checks cfg's TLS certificate and key, if any, as
 * hf_http_start() will: 0, or a negative errno with the reason logged.
 * Lets heapfragd refuse a bad file before it attaches to anything.
 */
int hf_http_check_tls(const struct hf_http_config *cfg);
/* Starts serving; 0 or a negative errno (with the reason logged). */
int hf_http_start(const struct hf_http_config *cfg, const struct hf_service *svc,
		  struct hf_http **out);
/* The port the server listens on (useful when cfg->listen named port 0). */
unsigned int hf_http_port(const struct hf_http *http);
/* Stops serving and frees; NULL-safe. */
void hf_http_stop(struct hf_http *http);

#endif /* HF_HTTP_H */
