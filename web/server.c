// SPDX-License-Identifier: MIT
/*
 * server.c - libmicrohttpd set-up and the path every request takes.
 *
 * A request is judged as soon as its headers are in: a bad path, an unknown
 * route, a wrong method, a missing token or a declared body over 64 KiB is
 * answered before any body is read.  Bodies are then gathered up to 64 KiB
 * (the rest is discarded and answered with 413) and the route's handler runs
 * once the request is complete.  Which requests need the token is auth.c's
 * policy; this file only applies it.
 *
 * With a certificate and key the port speaks HTTPS only (libmicrohttpd on
 * GnuTLS), TLS 1.2 and 1.3: a plain-HTTP client gets no answer.  The pair is
 * read and checked with GnuTLS before the server starts, so that a bad file
 * is one sentence at start-up rather than a failed handshake per client.
 *
 * Limits, so that slow or hostile clients cannot starve the daemon: a total
 * connection limit, a per-IP limit of a quarter of it (one client address
 * cannot take every slot), an idle timeout, and a per-connection memory
 * pool that bounds the request line and headers (libmicrohttpd answers 431
 * or 414 beyond it).  Two epoll threads serve; the tracing core never waits
 * for them, since the service calls only copy snapshots out.
 */
#include "http.h"
#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "log.h"

#define DEFAULT_MAX_CONNECTIONS 128
#define DEFAULT_TIMEOUT_SECONDS 10
#define THREADS                 2
/* Room for the request line, headers and read buffer of one connection. */
#define CONNECTION_MEMORY (64 * 1024)
/* A certificate chain or key larger than this is not a PEM file we want. */
#define MAX_PEM_BYTES (1024 * 1024)
/* GnuTLS's defaults without the protocol versions older than TLS 1.2. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct hf_http {
	struct MHD_Daemon *daemon;
	struct hf_service svc;
	char *token;
	size_t token_len;
	bool listen_loopback; /* bound to a loopback address alone */
	char *tls_cert;       /* PEM text, NULL without TLS */
	char *tls_key;
	size_t tls_key_len;
	unsigned int port;
};

/* What the server keeps about one request between libmicrohttpd's calls. */
struct request {
	const struct hf_route *route;
	pid_t pid;
	bool answered;
	bool too_large;
	char *body;
	size_t len;
};

static bool client_is_loopback(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	return hf_web_addr_is_loopback(info ? info->client_addr : NULL);
}

/* Compares in time independent of where the strings differ. */
static bool token_equal(const char *given, size_t given_len, const char *token, size_t token_len)
{
	unsigned char diff = given_len != token_len;

	for (size_t i = 0; i < token_len; i++)
		diff |= (unsigned char)(given[i < given_len ? i : 0] ^ token[i]);
	return diff == 0;
}

/*
 * Applies the route's policy (auth.c).  A token is "Authorization: Bearer
 * <token>"; the scheme name is case-insensitive, as RFC 9110 says.
 */
static int check_access(struct hf_http *h, struct MHD_Connection *conn, const char *method,
			const char *url)
{
	const char *auth;

	switch (hf_web_access(method, url, h->token != NULL, h->listen_loopback)) {
	case HF_ACCESS_OPEN:
		return 0;
	case HF_ACCESS_LOOPBACK:
		if (client_is_loopback(conn))
			return 0;
		hf_reply_error(conn, HF_E_FORBIDDEN,
			       "Without --token-file only loopback clients may attach or detach.");
		return -EPERM;
	case HF_ACCESS_TOKEN:
		break;
	}
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0 &&
	    token_equal(auth + 7, strlen(auth + 7), h->token, h->token_len))
		return 0;
	hf_reply_error_header(conn, HF_E_UNAUTHORIZED, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
			      "Bearer realm=\"heapfragd\"",
			      auth ? "The bearer token is wrong."
				   : "This route needs an Authorization: Bearer token.");
	return -EACCES;
}

/* A declared Content-Length over the limit is refused before the body. */
static bool declared_too_large(struct MHD_Connection *conn)
{
	return hf_web_body_too_large(
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH));
}

/* The first call, with the headers: every check that needs no body. */
static enum MHD_Result on_headers(struct hf_http *h, struct MHD_Connection *conn, const char *url,
				  const char *method, struct request *r)
{
	unsigned int allow;
	const char *why;
	enum hf_match m;
	int ret;

	r->answered = true;
	if (!hf_web_path_ok(url))
		return (enum MHD_Result)hf_reply_error(
			conn, HF_E_BAD_PATH,
			"Paths may not hold '..', '%%', '//' or control bytes.");
	m = hf_route_match(method, url, &r->route, &r->pid, &allow);
	if (m == HF_MATCH_NO_ROUTE)
		return (enum MHD_Result)hf_reply_error(conn, HF_E_NOT_FOUND,
						       "There is no such route; see GET /.");
	if (m == HF_MATCH_BAD_METHOD)
		return (enum MHD_Result)hf_reply_method_not_allowed(conn, allow);
	if ((why = hf_web_cross_site(
		     method,
		     MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
		     MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"),
		     MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-Fetch-Site"),
		     h->listen_loopback)))
		return (enum MHD_Result)hf_reply_error(conn, HF_E_FORBIDDEN, "%s", why);
	if ((ret = check_access(h, conn, method, url)))
		return MHD_YES;
	if (m == HF_MATCH_BAD_PID)
		return (enum MHD_Result)hf_reply_error(
			conn, HF_E_INVALID_PID,
			"A PID is a positive decimal number without sign or leading zeros.");
	if (declared_too_large(conn))
		return (enum MHD_Result)hf_reply_error(conn, HF_E_PAYLOAD_TOO_LARGE,
						       "Request bodies are limited to %d bytes.",
						       HF_WEB_MAX_BODY);
	r->answered = false;
	return MHD_YES;
}

static void take_body(struct request *r, const char *data, size_t n)
{
	char *body;

	if (r->too_large)
		return;
	if (n > HF_WEB_MAX_BODY - r->len) {
		/* Chunked bodies have no declared length: read and drop the rest. */
		r->too_large = true;
		free(r->body);
		r->body = NULL;
		r->len = 0;
		return;
	}
	body = realloc(r->body, r->len + n + 1);
	if (!body) {
		r->too_large = true;
		return;
	}
	memcpy(body + r->len, data, n);
	r->len += n;
	body[r->len] = '\0';
	r->body = body;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct hf_http *h = cls;
	struct request *r = *con_cls;
	struct hf_req req;

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*con_cls = r;
		return on_headers(h, conn, url, method, r);
	}
	if (*upload_data_size) {
		if (!r->answered)
			take_body(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->answered)
		return MHD_YES;
	r->answered = true;
	if (r->too_large)
		return (enum MHD_Result)hf_reply_error(conn, HF_E_PAYLOAD_TOO_LARGE,
						       "Request bodies are limited to %d bytes.",
						       HF_WEB_MAX_BODY);
	req = (struct hf_req){
		.conn = conn,
		.svc = &h->svc,
		.pid = r->pid,
		.body = r->body ? r->body : "",
		.body_len = r->len,
	};
	return (enum MHD_Result)r->route->handler(&req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;

	if (!r)
		return;
	free(r->body);
	free(r);
	*con_cls = NULL;
}

/*
 * Paths are matched exactly as sent: with decoding off, "%00" or "%2e%2e"
 * stay visible to hf_web_path_ok() instead of turning into bytes that could
 * cut a path short.
 */
static size_t no_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t len;

	if (HF_LOG_DEBUG > hf_log_level)
		return;
	len = (size_t)vsnprintf(line, sizeof(line), fmt, ap);
	if (len > 0 && len < sizeof(line) && line[len - 1] == '\n')
		line[len - 1] = '\0';
	hf_log(HF_LOG_DEBUG, "http: %s", line);
}

/* "A.B.C.D:PORT" or "[V6]:PORT", numeric only. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, bool *v6)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *port_s;
	unsigned long port;
	char *end;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		n = (size_t)(close - listen - 1);
		port_s = close + 2;
		listen++;
		*v6 = true;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - listen);
		port_s = colon + 1;
		*v6 = false;
	}
	if (n == 0 || n >= sizeof(host) || port_s[0] < '0' || port_s[0] > '9')
		return -EINVAL;
	memcpy(host, listen, n);
	host[n] = '\0';
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (errno || *end || port > 65535)
		return -EINVAL;
	if (*v6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -EINVAL;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -EINVAL;
	}
	return 0;
}

/* Reads a whole PEM file of at most MAX_PEM_BYTES; 0 or a negative errno, logged. */
static int read_pem(const char *path, const char *what, char **out, size_t *len)
{
	struct stat st;
	char *text = NULL;
	size_t got = 0;
	FILE *f;
	int err = 0;

	*out = NULL;
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		hf_log(HF_LOG_ERROR, "http: cannot read the TLS %s %s: %s", what, path,
		       strerror(-err));
		return err;
	}
	/* The key goes straight into text, never through stdio's buffer (freed unwiped). */
	setvbuf(f, NULL, _IONBF, 0);
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > MAX_PEM_BYTES) {
		hf_log(HF_LOG_ERROR, "http: the TLS %s %s is not a regular file of 1 byte to 1 MiB",
		       what, path);
		err = -EINVAL;
		goto cleanup;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		err = -ENOMEM;
		goto cleanup;
	}
	got = fread(text, 1, (size_t)st.st_size, f);
	if (got != (size_t)st.st_size) {
		hf_log(HF_LOG_ERROR, "http: cannot read the TLS %s %s: it changed while read", what,
		       path);
		err = -EIO;
		goto cleanup;
	}
	text[got] = '\0';
	*out = text;
	*len = got;
	text = NULL;

cleanup:
	if (text) {
		explicit_bzero(text, (size_t)st.st_size + 1);
		free(text);
	}
	fclose(f);
	return err;
}

/*
 * Loads the certificate and key into GnuTLS as libmicrohttpd will, so that
 * a file that is not PEM, or a key that is not the certificate's, is named
 * before the server starts.
 */
static int check_tls_pair(const struct hf_http *h, const struct hf_http_config *cfg)
{
	gnutls_certificate_credentials_t creds;
	gnutls_datum_t cert = {(unsigned char *)h->tls_cert, (unsigned int)strlen(h->tls_cert)};
	gnutls_datum_t key = {(unsigned char *)h->tls_key, (unsigned int)h->tls_key_len};
	int ret;

	if (gnutls_certificate_allocate_credentials(&creds) != GNUTLS_E_SUCCESS)
		return -ENOMEM;
	ret = gnutls_certificate_set_x509_key_mem(creds, &cert, &key, GNUTLS_X509_FMT_PEM);
	gnutls_certificate_free_credentials(creds);
	if (ret == GNUTLS_E_SUCCESS)
		return 0;
	if (ret == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
		hf_log(HF_LOG_ERROR, "http: the TLS key %s is not the key of the certificate %s",
		       cfg->tls_key_file, cfg->tls_cert_file);
	else
		hf_log(HF_LOG_ERROR,
		       "http: the TLS certificate %s and key %s are not a PEM certificate and its "
		       "key: %s",
		       cfg->tls_cert_file, cfg->tls_key_file, gnutls_strerror(ret));
	return -EINVAL;
}

/* Reads and checks the certificate and key of cfg into h. */
static int load_tls(struct hf_http *h, const struct hf_http_config *cfg)
{
	size_t cert_len = 0;
	int err;

	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		hf_log(HF_LOG_ERROR, "http: this libmicrohttpd was built without HTTPS support");
		return -ENOTSUP;
	}
	err = read_pem(cfg->tls_cert_file, "certificate", &h->tls_cert, &cert_len);
	if (!err)
		err = read_pem(cfg->tls_key_file, "key", &h->tls_key, &h->tls_key_len);
	if (!err)
		err = check_tls_pair(h, cfg);
	return err;
}

int hf_http_check_tls(const struct hf_http_config *cfg)
{
	struct hf_http h = {0};
	int err;

	if (!cfg->tls_cert_file)
		return 0;
	err = load_tls(&h, cfg);
	if (h.tls_key) {
		explicit_bzero(h.tls_key, h.tls_key_len);
		free(h.tls_key);
	}
	free(h.tls_cert);
	return err;
}

int hf_http_start(const struct hf_http_config *cfg, const struct hf_service *svc,
		  struct hf_http **out)
{
	unsigned int max_conn =
		cfg->max_connections ? cfg->max_connections : DEFAULT_MAX_CONNECTIONS;
	unsigned int timeout =
		cfg->timeout_seconds ? cfg->timeout_seconds : DEFAULT_TIMEOUT_SECONDS;
	unsigned int per_ip = max_conn / 4 ? max_conn / 4 : 1;
	const char *listen = cfg->listen ? cfg->listen : "127.0.0.1:9310";
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;
	struct hf_http *h = NULL;
	unsigned int flags;
	bool v6;
	int err;

	*out = NULL;
	err = parse_listen(listen, &ss, &v6);
	if (err) {
		hf_log(HF_LOG_ERROR,
		       "http: cannot parse listen address '%s': want ADDR:PORT or "
		       "[ADDR]:PORT",
		       listen);
		goto cleanup;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		err = -ENOMEM;
		goto cleanup;
	}
	h->svc = *svc;
	if (cfg->token) {
		h->token = strdup(cfg->token);
		if (!h->token) {
			err = -ENOMEM;
			goto cleanup;
		}
		h->token_len = strlen(h->token);
	}
	h->listen_loopback = hf_web_addr_is_loopback((const struct sockaddr *)&ss);
	if (cfg->tls_cert_file) {
		err = load_tls(h, cfg);
		if (err)
			goto cleanup;
	}
	if (!h->listen_loopback && !h->token)
		hf_log(HF_LOG_WARN,
		       "http: %s is reachable beyond this host and no --token-file was given: "
		       "every client that reaches it can read what heapfragd serves",
		       listen);
	flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0) |
		(h->tls_cert ? MHD_USE_TLS : 0);
	/*
	 * The certificate and key go last, and only with TLS: MHD_OPTION_END in
	 * their place ends the list without them.
	 */
	h->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)THREADS, MHD_OPTION_CONNECTION_LIMIT,
		max_conn, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
		timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_UNESCAPE_CALLBACK,
		no_unescape, NULL, MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_EXTERNAL_LOGGER,
		mhd_log, NULL, h->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
		h->tls_cert, MHD_OPTION_HTTPS_MEM_KEY, h->tls_key, MHD_OPTION_HTTPS_PRIORITIES,
		TLS_PRIORITIES, MHD_OPTION_END);
	if (!h->daemon) {
		err = errno ? -errno : -EIO;
		hf_log(HF_LOG_ERROR, "http: failed to listen on %s: %s", listen, strerror(-err));
		goto cleanup;
	}
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : 0;
	hf_log(HF_LOG_INFO,
	       "http: serving %s on %s (port %u, %u connections, %u per client, %u s "
	       "idle timeout%s)",
	       h->tls_cert ? "HTTPS" : "HTTP", listen, h->port, max_conn, per_ip, timeout,
	       !h->token            ? ""
	       : h->listen_loopback ? ", bearer token for changes"
				    : ", bearer token for data and changes");
	*out = h;
	return 0;

cleanup:
	hf_http_stop(h);
	return err;
}

unsigned int hf_http_port(const struct hf_http *http)
{
	return http ? http->port : 0;
}

void hf_http_stop(struct hf_http *http)
{
	if (!http)
		return;
	if (http->daemon)
		MHD_stop_daemon(http->daemon);
	if (http->token) {
		/* The token is a secret: do not leave it in freed memory. */
		explicit_bzero(http->token, http->token_len);
		free(http->token);
	}
	if (http->tls_key) {
		explicit_bzero(http->tls_key, http->tls_key_len);
		free(http->tls_key);
	}
	free(http->tls_cert);
	free(http);
}
