// SPDX-License-Identifier: MIT
/*
 * auth.c - who may ask what: the access policy of every route, as a pure
 * function of the request and of where the server listens.
 *
 * Writes (anything but GET or HEAD) change what is traced: with a token
 * they need it, without one only loopback clients may make them.  Reads of
 * data (/metrics and everything under /api/) carry the traced processes'
 * names, numbers and allocation sites: with a token and a listening address
 * beyond loopback they need it too, since then anyone on the network could
 * otherwise read them.  A server listening on loopback alone is reachable
 * only from this host, so its reads stay open as before.  The pages of the
 * browser dashboard ("/", "/processes/...", "/assets/...") hold no data of
 * their own (their script asks for the token and sends it on its API
 * calls) and /healthz must answer probes that hold no secret: these are
 * always open.  The list of open paths is closed: a new route is a data
 * route, and needs the token, until it is named here.
 */
#include "web.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

bool hf_web_open_path(const char *path)
{
	const struct hf_route *route;
	unsigned int allow;
	pid_t pid;

	return hf_route_match("GET", path, &route, &pid, &allow) == HF_MATCH_OK && route->open;
}

enum hf_access hf_web_access(const char *method, const char *path, bool have_token,
			     bool listen_loopback)
{
	bool read = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	if (!read)
		return have_token ? HF_ACCESS_TOKEN : HF_ACCESS_LOOPBACK;
	if (hf_web_open_path(path))
		return HF_ACCESS_OPEN;
	return have_token && !listen_loopback ? HF_ACCESS_TOKEN : HF_ACCESS_OPEN;
}

bool hf_web_addr_is_loopback(const struct sockaddr *sa)
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

/* "localhost", an IPv4 literal or a bracketed IPv6 literal, with or without ":port". */
static bool host_is_literal(const char *host)
{
	char name[64], buf[sizeof(struct in6_addr)];
	const char *end;
	size_t len;

	if (host[0] == '[') {
		end = strchr(host, ']');
		if (!end || (end[1] && end[1] != ':'))
			return false;
		len = (size_t)(end - host - 1);
		if (len >= sizeof(name))
			return false;
		memcpy(name, host + 1, len);
		name[len] = '\0';
		return inet_pton(AF_INET6, name, buf) == 1;
	}
	end = strchr(host, ':');
	len = end ? (size_t)(end - host) : strlen(host);
	if (len == 0 || len >= sizeof(name))
		return false;
	memcpy(name, host, len);
	name[len] = '\0';
	if (end)
		for (const char *p = end + 1; *p; p++)
			if (!isdigit((unsigned char)*p))
				return false;
	return strcasecmp(name, "localhost") == 0 || inet_pton(AF_INET, name, buf) == 1;
}

/* Whether origin is "http://" or "https://" followed by exactly host. */
static bool origin_is_host(const char *origin, const char *host)
{
	const char *rest = NULL;

	if (strncasecmp(origin, "http://", 7) == 0)
		rest = origin + 7;
	else if (strncasecmp(origin, "https://", 8) == 0)
		rest = origin + 8;
	return rest && host && strcasecmp(rest, host) == 0;
}

const char *hf_web_cross_site(const char *method, const char *host, const char *origin,
			      const char *fetch_site, bool listen_loopback)
{
	bool read = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	/* Browsers always send Host; an HTTP/1.0 client without one is no browser. */
	if (listen_loopback && host && !host_is_literal(host))
		return "This heapfragd listens on loopback and answers only requests addressed to "
		       "an IP address or localhost.";
	if (read)
		return NULL;
	if (origin && !origin_is_host(origin, host))
		return "Writes from a page of another origin are refused.";
	if (fetch_site &&
	    (strcmp(fetch_site, "cross-site") == 0 || strcmp(fetch_site, "same-site") == 0))
		return "Writes from a page of another site are refused.";
	return NULL;
}
