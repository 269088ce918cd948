#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The dashboard in a real headless Chromium, against the real daemon.

heapfragd traces the seed's incident (100,000 x 1000-byte messages, 90% freed
at random, the survivors held) on glibc in exact mode, and a second copy on
libptm attached in passive mode.  In Chromium (driven over the DevTools
protocol, cdp.py):

- the list at / shows both processes, and every number's data-value equals
  GET /api/v1/processes; its headings sort;
- each process page's data-values equal the API documents their sections
  name (data-source), read at the same moment (a page and the API agree
  once neither changes between the two reads; the test reads again until
  they do);
- the heap map is drawn: each cell's shade, read back from the canvas's
  pixels, is its share of in-use bytes in GET .../heapmap, and over the map
  they add up to the census's in-use bytes; arrow keys move through it;
- no console error, exception or failed load on any page;
- beyond loopback with --token-file, the list page asks for the token,
  refuses a wrong one, reads with the right one, and the process page then
  reads without asking again;
- screenshots of every page go to build/tests/artifacts/.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402

BUILD = os.environ.get("HF_BUILD_DIR", "build")
# A process name that is markup: shown as text, it loads nothing.
HOSTILE_NAME = "<img src=x>"
NO_MARKUP_JS = "document.querySelectorAll('img, main script').length === 0"
STATUS_BAD_JS = "document.getElementById('status').classList.contains('bad')"
ARTIFACTS = os.path.join(BUILD, "tests", "artifacts")
failures = []


def skip(why):
    if os.environ.get("CI") == "true":
        print("FAIL: cannot run under CI=true: " + why)
        sys.exit(1)
    print("SKIP: " + why)
    sys.exit(77)


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, data=None, method=None, token=None):
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def get_json(url):
    status, body = http(url)
    if status != 200:
        raise RuntimeError("GET %s: %d %s" % (url, status, body[:200]))
    return json.loads(body)


MISSING = object()


def lookup(doc, path):
    v = doc
    for k in path.split("."):
        if isinstance(v, list):
            if not k.isdigit() or int(k) >= len(v):
                return MISSING
            v = v[int(k)]
        elif isinstance(v, dict):
            if k not in v:
                return MISSING
            v = v[k]
        else:
            return MISSING
    return v


def same(shown, value):
    if value is MISSING:
        return False
    if shown == "null":
        return value is None
    if isinstance(value, bool):
        return shown == ("true" if value else "false")
    if isinstance(value, int):
        try:
            return int(shown) == value if shown.lstrip("-").isdigit() else float(shown) == value
        except ValueError:
            return False
    if isinstance(value, float):
        try:
            return float(shown) == value
        except ValueError:
            return False
    return shown == str(value)


# Every shown number with its field and its section's document.
FIELDS_JS = """[...document.querySelectorAll('[data-field]')]
  .filter(e => e.dataset.field !== 'heapmap' && e.dataset.field !== 'profile')
  .map(e => { const s = e.closest('[data-source]');
              return [s ? s.dataset.source : null, e.dataset.field, e.dataset.value]; })"""


def page_matches_api(browser, base, tries=12):
    """Reads the page and the API until they agree; the last mismatches otherwise."""
    bad = ["never compared"]
    for _ in range(tries):
        shown = browser.eval(FIELDS_JS)
        docs, bad = {}, []
        for source, field, value in shown:
            if source is None:
                bad.append("%s has no data-source" % field)
                continue
            if source not in docs:
                docs[source] = get_json(base + source)
            want = lookup(docs[source], field)
            if not same(value, want):
                bad.append("%s %s: page %s, API %s" % (source, field, value,
                                                        "missing" if want is MISSING else want))
        again = browser.eval(FIELDS_JS)
        if not bad and again == shown:
            return len(shown), []
        time.sleep(1.5)
    return 0, bad


PIXELS_JS = """[...document.querySelectorAll('#heapmap canvas.map')].map(c => {
  const g = c.getContext('2d'), d = g.getImageData(0, 0, c.width, c.height).data;
  const cell = +c.dataset.cellPixels, cols = +c.dataset.columns, rows = c.height / cell, out = [];
  for (let k = 0; k < rows * cols; k++) {
    const x = (k % cols) * cell + ((cell - 1) >> 1), y = Math.floor(k / cols) * cell + cell - 2;
    const i = (y * c.width + x) * 4;
    out.push([d[i], d[i + 1], d[i + 2], d[i + 3]]);
  }
  return {region: +c.dataset.region, pixels: out};
})"""


def check_heapmap(browser, base, pid, label):
    """The canvas's shades against /heapmap's cells and the census's in-use bytes."""
    for _ in range(10):
        doc = get_json("%s/api/v1/processes/%d" % (base, pid))
        hm = get_json("%s/api/v1/processes/%d/heapmap" % (base, pid))
        drawn_at = browser.eval("document.getElementById('heapmap').dataset.value")
        if doc["census"] and hm["at"] == doc["census"]["at"] and drawn_at == str(hm["at"]):
            break
        time.sleep(1.5)
    else:
        check(False, "%s: the heap map drawn is the census's latest" % label)
        return
    canvases = browser.eval(PIXELS_JS)
    check(len(canvases) == len(hm["regions"]) and len(canvases) > 0,
          "%s: one canvas per heap region (%d)" % (label, len(hm["regions"])))
    estimate, worst, cells, worst_cell = 0.0, 0.0, 0, None
    for c in canvases:
        r = hm["regions"][c["region"]]
        span = int(r["end"], 16) - int(r["start"], 16)
        for k, (in_use, _free, resident) in enumerate(r["cells"]):
            length = min(r["cell_bytes"], span - k * r["cell_bytes"])
            red, green, blue, alpha = c["pixels"][k]
            # Unfilled: transparent, or the grey outline of memory not resident.
            filled = alpha and not (red == green == blue)
            share = ((253 - red) / 233.0) ** 2 if filled else 0.0
            error = 1.0 if not filled and (in_use or resident) else abs(share - in_use / length)
            if error > worst:
                worst = error
                worst_cell = (c["region"], k, in_use, resident, length, red, green, blue, alpha)
            estimate += share * length
            cells += 1
    in_use = doc["census"]["in_use"]["bytes"]
    check(cells > 100, "%s: the map has %d cells" % (label, cells))
    check(worst <= 0.01, "%s: every cell's shade is its in-use share (worst error %.4f: region, "
          "cell, in use, resident, length, RGBA %s)" % (label, worst, worst_cell))
    check(abs(estimate - in_use) <= 0.01 * in_use,
          "%s: the drawn in-use share adds up to the census's in-use bytes "
          "(%.0f drawn, %d in the census: %.2f%% of the heap)" %
          (label, estimate, in_use, 100.0 * in_use / max(1, sum(
              int(r["end"], 16) - int(r["start"], 16) for r in hm["regions"]))))


def children(pid):
    """The processes whose parent is pid."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # The name may hold anything, ")" too: the fields follow its last ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def stop(daemon):
    """SIGTERM, and SIGKILL if heapfragd has not exited 20 s later; then the
    command it started after "--", which heapfragd leaves running."""
    started = children(daemon.pid)
    daemon.terminate()
    try:
        daemon.wait(timeout=20)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
    for pid in started:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait(what, fn, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fn():
                return True
        except (RuntimeError, OSError, KeyError, TypeError):
            pass
        time.sleep(0.5)
    check(False, "waited %d s for %s" % (timeout, what))
    return False


def token_pages(browser):
    """Beyond loopback with --token-file: the page asks for the token once."""
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    token = "dashboard-" + os.urandom(8).hex()
    tdir = tempfile.mkdtemp(prefix="hf-dashboard-token-")
    token_file = os.path.join(tdir, "token")
    with open(token_file, "w") as f:
        f.write(token + "\n")
    os.chmod(token_file, 0o600)
    log = open(os.path.join(ARTIFACTS, "dashboard_token_heapfragd.log"), "w")
    workload = os.path.join(BUILD, "tests", "workloads", "incident_demo")
    daemon = subprocess.Popen([os.path.join(BUILD, "bin", "heapfragd"), "-l", "0.0.0.0:%d" % port,
                               "--token-file", token_file, "--", workload, "--hold", "3600",
                               "--count", "1000"], stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait("heapfragd with a token to serve", lambda: http(base + "/healthz")[0] == 200, 30):
            return
        check(http(base + "/api/v1/processes")[0] == 401, "beyond loopback, data needs the token")
        wait("the workload to be traced", lambda: len(json.loads(
            http(base + "/api/v1/processes", token=token)[1])["processes"]) == 1, 30)
        seen = len(browser.errors)
        browser.goto(base + "/")
        browser.wait_for("document.getElementById('token-form') && !document.getElementById('token-form').hidden",
                         what="the token form")
        # A wrong token first: submitted (the form empties), sent and refused
        # (one more 401), and the form is back.
        for attempt in ("wrong-" + token, token):
            refused = sum("status of 401" in e for e in browser.errors)
            browser.eval("document.getElementById('token-input').focus()")
            browser.call("Input.insertText", {"text": attempt})
            browser.key("Enter")
            if attempt != token:
                deadline = time.monotonic() + 10
                while sum("status of 401" in e for e in browser.errors) == refused:
                    if time.monotonic() > deadline:
                        raise cdp.CdpError("the wrong token was never sent")
                    time.sleep(0.1)
                browser.wait_for("!document.getElementById('token-form').hidden && "
                                 "document.getElementById('token-input').value === ''",
                                 what="the empty form again after a wrong token")
        browser.wait_for("document.querySelectorAll('#procs tbody tr').length === 1",
                         what="the list, read with the token")
        check(True, "the list page asks for the token, refuses a wrong one and reads with the right one")
        pid = browser.eval("+document.querySelector('#procs tbody tr').dataset.pid")
        # The token lasts for the tab: the process page reads without asking.
        browser.goto("%s/processes/%d" % (base, pid))
        browser.wait_for("document.querySelector('[data-field=\"census.state\"]') && "
                         "document.querySelector('[data-field=\"census.state\"]').dataset.value !== undefined",
                         what="the process page with the stored token")
        check(browser.eval("!document.getElementById('token-form')"),
              "the process page reads with the stored token without asking again")
        # Only the two refused reads of the list (and any retried together with them) may log.
        extra = [e for e in browser.errors[seen:] if "status of 401" not in e]
        check(not extra, "no error but the refused reads (%s)" % "; ".join(extra[:3]))
        del browser.errors[seen:]
        browser.screenshot(os.path.join(ARTIFACTS, "dashboard_process_token.png"))
    finally:
        stop(daemon)
        log.close()
        shutil.rmtree(tdir, ignore_errors=True)

def main():
    if os.geteuid() != 0:
        skip("heapfragd needs root for its BPF programs")
    if not cdp.find_chromium():
        skip("Chromium is not installed (make deps installs Debian's chromium)")
    os.makedirs(ARTIFACTS, exist_ok=True)
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    workload = os.path.join(BUILD, "tests", "workloads", "incident_demo")
    # The glibc copy names itself in markup: the pages must show it as text.
    hostile_dir = tempfile.mkdtemp(prefix="hf-dashboard-")
    hostile = os.path.join(hostile_dir, HOSTILE_NAME)
    shutil.copy(workload, hostile)
    log = open(os.path.join(ARTIFACTS, "dashboard_heapfragd.log"), "w")
    # A census every 15 s: the first comes before the incident's frees, the
    # next after them; then the heap holds still for the comparisons.
    daemon = subprocess.Popen([os.path.join(BUILD, "bin", "heapfragd"), "-l", "127.0.0.1:%d" % port,
                               "--census-interval", "15", "--", hostile, "--hold", "3600"],
                              stdout=log, stderr=subprocess.STDOUT)
    ptm = None
    browser = None
    try:
        if not wait("heapfragd to serve", lambda: http(base + "/healthz")[0] == 200, 30):
            return
        glibc_pid = None

        def traced():
            nonlocal glibc_pid
            procs = get_json(base + "/api/v1/processes")["processes"]
            glibc_pid = procs[0]["pid"] if procs else None
            return glibc_pid is not None

        if not wait("the incident to be traced", traced, 30):
            return
        # The libptm copy samples its allocations (passive mode's sites): it
        # waits for a line after READY, so that it allocates once attached.
        ptm = subprocess.Popen([workload, "--hold", "3600", "--wait", "1"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE,
                               env=dict(os.environ, LD_PRELOAD=os.path.join(BUILD, "lib", "libptm.so"),
                                        MALLOC_SAMPLE_INTERVAL_="16384"))
        ptm.stdout.readline()
        status, body = http(base + "/api/v1/processes", method="POST",
                            data=json.dumps({"pid": ptm.pid, "mode": "passive"}).encode())
        if not check(status == 201, "libptm copy attached in passive mode (%d %s)" % (status, body[:120])):
            return
        ptm.stdin.write(b"go\n")
        ptm.stdin.flush()

        def censused(pid):
            d = get_json("%s/api/v1/processes/%d" % (base, pid))
            c = d["census"]
            return (c is not None and c["state"] == "complete" and
                    c["in_use"]["bytes"] < 0.2 * c["free"]["bytes"])

        if not (wait("the glibc incident's census after its frees", lambda: censused(glibc_pid)) and
                wait("the libptm copy's census after its frees", lambda: censused(ptm.pid))):
            return

        browser = cdp.Browser()

        # The list.
        browser.goto(base + "/")
        browser.wait_for("document.querySelectorAll('#procs tbody tr').length === 2",
                         what="both processes listed")
        rows = browser.eval("""[...document.querySelectorAll('#procs tbody tr')].map(tr =>
            [+tr.dataset.pid, [...tr.querySelectorAll('[data-field]')].map(e => [e.dataset.field, e.dataset.value])])""")
        for tries in range(10):
            listed = {p["pid"]: p for p in get_json(base + "/api/v1/processes")["processes"]}
            bad = ["pid %d: %s shows %s, API %s" % (pid, f, v, lookup(listed.get(pid, {}), f))
                   for pid, fields in rows for f, v in fields
                   if not same(v, lookup(listed.get(pid, {}), f))]
            if not bad:
                break
            time.sleep(1.5)
            rows = browser.eval("""[...document.querySelectorAll('#procs tbody tr')].map(tr =>
                [+tr.dataset.pid, [...tr.querySelectorAll('[data-field]')].map(e => [e.dataset.field, e.dataset.value])])""")
        check(not bad, "the list's %d numbers equal /api/v1/processes%s" %
              (sum(len(f) for _, f in rows), "" if not bad else ": " + "; ".join(bad[:5])))
        check(sorted(p for p, _ in rows) == sorted([glibc_pid, ptm.pid]), "the list shows both processes")
        check(all(len(f) == 9 for _, f in rows), "each row shows its nine fields")
        shown = browser.eval("document.querySelector('tr[data-pid=\"%d\"] [data-field=\"comm\"]').textContent"
                             % glibc_pid)
        check(shown == HOSTILE_NAME and browser.eval(NO_MARKUP_JS),
              "a process named %r is shown as text (%r), not markup" % (HOSTILE_NAME, shown))
        # Sorting, from the keyboard: the PID heading's button, focused, then Enter.
        browser.eval("document.querySelector('th[data-sort=\"pid\"] button').focus()")
        browser.key("Enter")
        order = browser.eval("[...document.querySelectorAll('#procs tbody tr')].map(tr => +tr.dataset.pid)")
        check(order == sorted(order) and
              browser.eval("document.querySelector('th[data-sort=\"pid\"]').getAttribute('aria-sort')") == "ascending",
              "Enter on the PID heading sorts by pid, ascending")
        browser.key("Enter")
        order = browser.eval("[...document.querySelectorAll('#procs tbody tr')].map(tr => +tr.dataset.pid)")
        check(order == sorted(order, reverse=True), "Enter again sorts descending")
        check(not browser.eval(STATUS_BAD_JS), "the list's status line reports no failure")
        browser.screenshot(os.path.join(ARTIFACTS, "dashboard_list.png"))

        # Each process's page.
        for pid, label, mode in ((glibc_pid, "glibc, exact mode", "exact"),
                                 (ptm.pid, "libptm, passive mode", "passive")):
            browser.goto("%s/processes/%d" % (base, pid))
            ready = ["document.querySelector('#heapmap canvas.map')",
                     "document.querySelector('#arenas tbody tr')",
                     "document.querySelector('#findings li')",
                     "document.querySelector('[data-field=\"census.state\"]').dataset.value === 'complete'"]
            # Sites: exact in exact mode; libptm's sampled estimate in passive mode.
            ready += ["document.querySelector('#sites tbody tr')",
                      "document.querySelector('#flame svg g + g')"]
            browser.wait_for(" && ".join("(" + r + ")" for r in ready), timeout=40,
                             what=label + " page filled in")
            n, bad = page_matches_api(browser, base)
            check(not bad and n > 40, "%s: the page's %d numbers equal the API's%s" %
                  (label, n, "" if not bad else ": " + "; ".join(bad[:6])))
            check_heapmap(browser, base, pid, label)
            check(browser.eval(NO_MARKUP_JS), "%s: no markup from the target's names" % label)
            check(not browser.eval(STATUS_BAD_JS), "%s: the status line reports no failure (%s)" %
                  (label, browser.eval("document.getElementById('status').textContent")))
            # The map from the keyboard: focus it, two steps right, one down.
            browser.eval("document.querySelector('#heapmap canvas.map').focus()")
            for key in ("ArrowRight", "ArrowRight", "ArrowDown"):
                browser.key(key)
            cell = browser.eval("""[...document.querySelectorAll('#heapmap-readout [data-field]')]
                                   .map(e => [e.dataset.field, e.dataset.value])""")
            hm = get_json("%s/api/v1/processes/%d/heapmap" % (base, pid))
            check(len(cell) == 3 and cell[0][0] == "regions.0.cells.66.0" and
                  all(same(v, lookup(hm, f)) for f, v in cell),
                  "%s: arrow keys select cell 66 and read out its numbers (%s)" % (label, cell))
            findings = browser.eval("[...document.querySelectorAll('#findings [data-field$=\".finding\"]')].map(e => e.dataset.value)")
            check("external_fragmentation" in findings, "%s: the doctor's finding is shown (%s)" % (label, findings))
            bars = browser.eval("document.querySelectorAll('#flame svg g').length")
            check(bars >= 2, "%s: the flame graph has %d bars" % (label, bars))
            top = browser.eval("document.querySelector('#sites tbody tr td').textContent")
            check(top == "wl_malloc", "%s: the top site is wl_malloc (%s)" % (label, top))
            if mode != "exact":
                note = browser.eval("document.getElementById('latency-note').textContent")
                check("not timed in passive mode" in note, "%s: latency says it is not measured" % label)
                unknown = browser.eval("document.querySelector('[data-field=\"heap.requested_bytes\"]').textContent")
                check(unknown == "\u2014", "%s: an unmeasured value shows as a dash, not 0" % label)
            browser.screenshot(os.path.join(ARTIFACTS, "dashboard_process_%s.png" % mode))

        check(not browser.errors, "no console error, exception or failed load (%s)" %
              "; ".join(browser.errors[:5]))
        token_pages(browser)
    finally:
        if browser:
            browser.close()
        if ptm:
            ptm.kill()
            ptm.wait()
        shutil.rmtree(hostile_dir, ignore_errors=True)
        stop(daemon)
        log.close()


if __name__ == "__main__":
    try:
        main()
    except cdp.CdpError as e:
        check(False, "the browser: %s" % e)
    print("%d failure(s); screenshots in %s" % (len(failures), ARTIFACTS))
    sys.exit(1 if failures else 0)
