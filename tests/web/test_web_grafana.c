// SPDX-License-Identifier: MIT
/*
 * test_web_grafana.c - web/grafana/heapfrag.json is valid JSON (for jansson
 * and for python3's json.load), has a Prometheus datasource variable and the
 * panels the dashboard promises, and every PromQL expression in it names
 * only metrics that /metrics exports: the family list is taken from the
 * Prometheus writer's own output, not written down a second time.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixtures.h"
#include "web.h"

#define MAX_NAMES 96

static char names[MAX_NAMES][96];
static int nr_names;

static bool is_exported(const char *name, size_t len);

static void add_name(const char *name, size_t len)
{
	if (nr_names < MAX_NAMES && len < sizeof(names[0]) && !is_exported(name, len))
		snprintf(names[nr_names++], sizeof(names[0]), "%.*s", (int)len, name);
}

/*
 * Every sample name a scrape can hold: the families of the TYPE lines, and
 * the name of every sample line of a process that knows every value (so a
 * histogram's _bucket, _count and, where it has one, _sum).
 */
static void exported_names(void)
{
	static struct hf_snapshot s;
	struct hf_daemon_stats st = {.nr_drop_reasons = 1, .dropped = {{"live_map_full", 1}}};
	struct hf_buf b = {0};
	char *text;

	fixture_libptm(&s, 1, "x");
	hf_prom_write(&b, &s, 1, &st);
	hf_prom_write_scrape_duration(&b, 0.001);
	text = hf_buf_take(&b, NULL);
	for (char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, "# TYPE ", 7) == 0)
			add_name(p + 7, strcspn(p + 7, " "));
		else if (p[0] != '#')
			add_name(p, strcspn(p, "{ "));
	}
	free(text);
}

static bool is_exported(const char *name, size_t len)
{
	for (int i = 0; i < nr_names; i++) {
		if (strlen(names[i]) == len && strncmp(names[i], name, len) == 0)
			return true;
	}
	return false;
}

/* Checks every heapfrag_ identifier in a PromQL expression; returns how many. */
static int check_expr(const char *expr)
{
	int found = 0;

	for (const char *p = expr; (p = strstr(p, "heapfrag_"));) {
		size_t len = 0;

		if (p > expr && (isalnum((unsigned char)p[-1]) || p[-1] == '_')) {
			p++;
			continue;
		}
		while (isalnum((unsigned char)p[len]) || p[len] == '_' || p[len] == ':')
			len++;
		CHECK_MSG(is_exported(p, len), "\"%.*s\" in %s is not exported by /metrics",
			  (int)len, p, expr);
		found++;
		p += len;
	}
	return found;
}

int main(void)
{
	const char *src = getenv("HF_SOURCE_DIR");
	char path[1024], cmd[1200];
	json_error_t err;
	json_t *dash, *panels, *vars, *p;
	bool has_ds_var = false, has_heatmap = false, has_stacked = false;
	int metrics = 0;
	size_t i;

	snprintf(path, sizeof(path), "%s/web/grafana/heapfrag.json", src ? src : ".");
	exported_names();
	CHECK(nr_names >= 22);
	/* The sampled heap and call-latency families, and only the latency histogram's _sum. */
	CHECK(is_exported("heapfrag_sampled_live_by_size_bytes", 35));
	CHECK(is_exported("heapfrag_allocator_call_duration_seconds_sum", 44));
	CHECK(!is_exported("heapfrag_allocation_size_bytes_sum", 34));

	dash = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	CHECK_MSG(dash != NULL, "%s:%d: %s", path, err.line, err.text);
	if (!dash)
		return hf_test_done();
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import json, sys; json.load(open(sys.argv[1]))' '%s'", path);
	CHECK_MSG(system(cmd) == 0, "python3 json.load refused %s", path);

	vars = json_object_get(json_object_get(dash, "templating"), "list");
	json_array_foreach(vars, i, p)
	{
		const char *type = json_string_value(json_object_get(p, "type"));
		json_t *q = json_object_get(p, "query");

		if (type && !strcmp(type, "datasource") &&
		    !strcmp(json_string_value(q) ?: "", "prometheus"))
			has_ds_var = true;
		if (json_is_object(q))
			metrics += check_expr(json_string_value(json_object_get(q, "query")) ?: "");
	}
	CHECK(has_ds_var);

	panels = json_object_get(dash, "panels");
	CHECK(json_array_size(panels) >= 5);
	json_array_foreach(panels, i, p)
	{
		const char *type = json_string_value(json_object_get(p, "type"));
		json_t *targets = json_object_get(p, "targets"), *t;
		json_t *stacking = json_object_get(
			json_object_get(
				json_object_get(json_object_get(p, "fieldConfig"), "defaults"),
				"custom"),
			"stacking");
		size_t k;

		CHECK_MSG(json_array_size(targets) > 0, "panel %zu has no query", i);
		CHECK_STR_EQ(
			json_string_value(json_object_get(json_object_get(p, "datasource"), "uid")),
			"${datasource}");
		if (type && !strcmp(type, "heatmap"))
			has_heatmap = true;
		if (!strcmp(json_string_value(json_object_get(stacking, "mode")) ?: "", "normal"))
			has_stacked = true;
		json_array_foreach(targets, k, t)
		{
			const char *expr = json_string_value(json_object_get(t, "expr"));

			CHECK_MSG(expr && check_expr(expr) > 0, "panel %zu target %zu: %s", i, k,
				  expr ?: "(no expr)");
			metrics++;
		}
	}
	CHECK(has_heatmap);
	CHECK(has_stacked);
	CHECK(metrics > 10);
	json_decref(dash);
	return hf_test_done();
}
