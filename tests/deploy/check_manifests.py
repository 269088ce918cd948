#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Kubernetes manifest, checked without a cluster.

daemon/deploy/heapfrag-daemonset.yaml must parse as YAML, hold the objects a
node agent needs, and every reference in it must resolve: each volumeMount
names a volume, each probe and the Service name a container port, the
scrape annotation's port is the one heapfragd listens on, the selectors
select what they mean to, and every heapfragd flag in args is one that
daemon/options.c defines.  Field names are checked against the Kubernetes
API's own (a misspelt field is silently dropped by kubectl apply).
Prints "N passed, N failed"; exits 1 on any failure.
"""
import os
import re
import sys

import yaml

SRC = os.environ.get("HF_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MANIFEST = os.path.join(SRC, "daemon", "deploy", "heapfrag-daemonset.yaml")
OPTIONS = os.path.join(SRC, "daemon", "options.c")

passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("CHECK failed: " + what, file=sys.stderr)


# Fields the Kubernetes API (core/v1, apps/v1) knows, for the objects used here.
KNOWN = {
    "pod_spec": {"hostPID", "hostNetwork", "hostIPC", "priorityClassName", "tolerations",
                 "terminationGracePeriodSeconds", "containers", "initContainers", "volumes",
                 "serviceAccountName", "nodeSelector", "affinity", "dnsPolicy",
                 "securityContext"},
    "container": {"name", "image", "imagePullPolicy", "args", "command", "env", "ports",
                  "securityContext", "startupProbe", "readinessProbe", "livenessProbe",
                  "resources", "volumeMounts"},
    "probe": {"httpGet", "periodSeconds", "timeoutSeconds", "failureThreshold",
              "successThreshold", "initialDelaySeconds"},
    "volume_mount": {"name", "mountPath", "readOnly", "mountPropagation", "subPath"},
    "volume": {"name", "hostPath", "secret", "configMap", "emptyDir"},
    "host_path": {"path", "type"},
    "endpoint": {"port", "path", "interval", "scrapeTimeout", "authorization", "relabelings",
                 "scheme", "tlsConfig", "metricRelabelings"},
}
HOST_PATH_TYPES = {"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                   "CharDevice", "BlockDevice"}


def unknown(obj, kind):
    return sorted(set(obj) - KNOWN[kind])


def main():
    with open(MANIFEST) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    by_kind = {d.get("kind"): d for d in docs}
    for kind in ("Namespace", "DaemonSet", "Service", "ServiceMonitor"):
        check(kind in by_kind, "the manifest has a " + kind)
    ns = by_kind["Namespace"]["metadata"]["name"]
    for d in docs:
        check(isinstance(d.get("apiVersion"), str) and d["metadata"].get("name"),
              "%s has an apiVersion and a name" % d.get("kind"))
        if d["kind"] != "Namespace":
            check(d["metadata"].get("namespace") == ns, "%s is in %s" % (d["kind"], ns))

    ds = by_kind["DaemonSet"]
    check(ds["apiVersion"] == "apps/v1", "DaemonSet is apps/v1")
    tmpl = ds["spec"]["template"]
    labels = tmpl["metadata"]["labels"]
    selector = ds["spec"]["selector"]["matchLabels"]
    check(selector.items() <= labels.items(), "the DaemonSet's selector selects its pods")
    spec = tmpl["spec"]
    check(unknown(spec, "pod_spec") == [], "pod spec fields: %s" % unknown(spec, "pod_spec"))
    check(spec.get("hostPID") is True, "hostPID: true (every process, /proc/PID/root)")
    check(not spec.get("hostNetwork"), "no hostNetwork: it listens on the pod IP")
    for k, v in tmpl["metadata"].get("annotations", {}).items():
        check(isinstance(v, str), "annotation %s is a string (quoted in YAML)" % k)
    for k, v in labels.items():
        check(isinstance(v, str), "label %s is a string" % k)

    check(len(spec["containers"]) == 1, "one container")
    c = spec["containers"][0]
    check(unknown(c, "container") == [], "container fields: %s" % unknown(c, "container"))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check("http" in ports, "a container port named http")

    # The flags in args exist, and --listen's port is the container port.
    with open(OPTIONS) as f:
        flags = set(re.findall(r'^\s*\{"([a-z-]+)",', f.read(), re.M))
    listen_port = None
    for arg in c["args"]:
        check(arg.startswith("--"), "argument %s is a long flag" % arg)
        name = arg[2:].split("=", 1)[0]
        check(name in flags, "--%s is a heapfragd flag (daemon/options.c)" % name)
        if name == "listen":
            listen_port = int(arg.rsplit(":", 1)[1])
            check(arg.split("=", 1)[1].rsplit(":", 1)[0] == "0.0.0.0",
                  "it listens on every address of the pod")
    check(listen_port == ports.get("http"), "--listen's port %s is the http port %s" %
          (listen_port, ports.get("http")))
    ann = tmpl["metadata"]["annotations"]
    check(ann.get("prometheus.io/scrape") == "true", "prometheus.io/scrape is \"true\"")
    check(ann.get("prometheus.io/port") == str(ports.get("http")),
          "prometheus.io/port is the http port")
    check(ann.get("prometheus.io/path") == "/metrics", "prometheus.io/path is /metrics")

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = c.get(probe)
        check(p is not None, "the container has a " + probe)
        if p:
            check(unknown(p, "probe") == [], "%s fields: %s" % (probe, unknown(p, "probe")))
            check(p["httpGet"]["path"] == "/healthz", probe + " asks /healthz")
            check(p["httpGet"]["port"] in ports, probe + " names a container port")

    volumes = {v["name"]: v for v in spec["volumes"]}
    check(len(volumes) == len(spec["volumes"]), "volume names are unique")
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    for m in c["volumeMounts"]:
        check(unknown(m, "volume_mount") == [], "mount fields: %s" % unknown(m, "volume_mount"))
        check(m["name"] in volumes, "mount %s names a volume" % m["mountPath"])
        check(m.get("mountPropagation", "None") in ("None", "HostToContainer", "Bidirectional"),
              "mountPropagation of %s" % m["mountPath"])
    used = {m["name"] for m in c["volumeMounts"]}
    for name, v in volumes.items():
        check(unknown(v, "volume") == [], "volume fields: %s" % unknown(v, "volume"))
        check(name in used, "volume %s is mounted" % name)
        if "hostPath" in v:
            check(unknown(v["hostPath"], "host_path") == [], "hostPath fields of " + name)
            check(v["hostPath"].get("type", "") in HOST_PATH_TYPES, "hostPath type of " + name)
    host = {v["hostPath"]["path"]: n for n, v in volumes.items() if "hostPath" in v}
    # What heapfragd needs of the node, each mounted where it looks for it.
    for path, where, writable in (("/sys/kernel/tracing", "/sys/kernel/tracing", True),
                                  ("/sys/kernel/debug", "/sys/kernel/debug", True),
                                  ("/sys/fs/bpf", "/sys/fs/bpf", True),
                                  ("/sys/fs/cgroup", "/sys/fs/cgroup", False),
                                  ("/sys/kernel/btf", "/sys/kernel/btf", False),
                                  ("/proc", "/host/proc", False)):
        check(path in host, "the host's %s is a volume" % path)
        m = mounts.get(where)
        check(m is not None and m["name"] == host.get(path),
              "the host's %s is mounted at %s" % (path, where))
        if m is not None and writable:
            check(not m.get("readOnly"), "%s is writable (events are created there)" % where)
    token = [v for v in volumes.values() if "secret" in v]
    check(len(token) == 1 and "--token-file=/etc/heapfragd/token" in c["args"] and
          mounts.get("/etc/heapfragd", {}).get("name") == token[0]["name"],
          "the token Secret is mounted where --token-file reads it")

    svc = by_kind["Service"]
    check(svc["spec"]["selector"].items() <= labels.items(), "the Service selects the pods")
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    check("http" in svc_ports and svc_ports["http"]["targetPort"] in ports,
          "the Service's http port targets the container port")

    sm = by_kind["ServiceMonitor"]
    check(sm["apiVersion"] == "monitoring.coreos.com/v1", "ServiceMonitor is monitoring.coreos.com/v1")
    check(sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items(),
          "the ServiceMonitor selects the Service")
    check(ns in sm["spec"]["namespaceSelector"]["matchNames"], "the ServiceMonitor looks in " + ns)
    for e in sm["spec"]["endpoints"]:
        check(unknown(e, "endpoint") == [], "endpoint fields: %s" % unknown(e, "endpoint"))
        check(e["port"] in svc_ports, "the endpoint names the Service's port")
        check(e.get("path") == "/metrics", "the endpoint scrapes /metrics")
        cred = e.get("authorization", {}).get("credentials", {})
        check(cred.get("name") == token[0]["secret"]["secretName"] if token else False,
              "the endpoint's bearer token is the daemon's Secret")

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
