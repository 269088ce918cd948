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
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* Paths that are open as they are, and prefixes whose every path is open. */
static const char *const open_paths[] = {"/", "/healthz", "/processes"};
static const char *const open_prefixes[] = {"/processes/", "/assets/"};

bool hf_web_open_path(const char *path)
{
	for (size_t i = 0; i < sizeof(open_paths) / sizeof(open_paths[0]); i++)
		if (strcmp(path, open_paths[i]) == 0)
			return true;
	for (size_t i = 0; i < sizeof(open_prefixes) / sizeof(open_prefixes[0]); i++)
		if (strncmp(path, open_prefixes[i], strlen(open_prefixes[i])) == 0)
			return true;
	return false;
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
