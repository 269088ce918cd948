# SPDX-License-Identifier: MIT
"""A headless Chromium driven over the DevTools protocol on a pipe.

Chromium started with --remote-debugging-pipe reads commands from its fd 3
and writes answers and events to its fd 4, one JSON message each, ended by a
NUL byte: no websocket library and no port.  One page (target) is attached
in flattened mode; every console error, uncaught exception and error log
entry it produces is kept in `errors`.
"""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time


class CdpError(RuntimeError):
    pass


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(self, width=1400, height=1000):
        self.profile = tempfile.mkdtemp(prefix="hf-chromium-")
        cmd_r, cmd_w = os.pipe()
        evt_r, evt_w = os.pipe()
        # Moved out of the way so that dup2 onto 3 and 4 cannot clobber one
        # another; 3 and 4 are kept open in the child (the closing of
        # inherited descriptors comes after preexec_fn).
        hi_r, hi_w = os.dup(cmd_r), os.dup(evt_w)
        for fd in (cmd_r, evt_w):
            os.close(fd)

        def child_fds():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        exe = find_chromium()
        if not exe:
            raise CdpError("Chromium is not installed")
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
             "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             "--disable-component-update", "--mute-audio",
             "--user-data-dir=" + self.profile, "about:blank"],
            pass_fds=(3, 4), preexec_fn=child_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(hi_r)
        os.close(hi_w)
        self.out = os.fdopen(cmd_w, "wb", buffering=0)
        self.inp = os.fdopen(evt_r, "rb", buffering=0)
        self.next_id = 0
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.answers = {}
        self.events = []
        self.errors = []
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target["targetId"], "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(domain + ".enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def _read(self):
        buf = b""
        while True:
            chunk = self.inp.read(65536)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self.cond:
                    if "id" in msg:
                        self.answers[msg["id"]] = msg
                    else:
                        self._event(msg)
                    self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _event(self, msg):
        method, p = msg.get("method"), msg.get("params", {})
        self.events.append(method)
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.errors.append("console." + p["type"] + ": " + text)
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append("exception: " + d.get("text", "") + " " +
                               str(d.get("exception", {}).get("description", "")))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.errors.append("log (" + e.get("source", "") + "): " + e.get("text", "") +
                               " " + e.get("url", ""))

    def call(self, method, params=None, session=True, timeout=30):
        with self.cond:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        self.out.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self.cond:
            while mid not in self.answers:
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise CdpError(method + ": no answer")
                self.cond.wait(left)
            answer = self.answers.pop(mid)
        if "error" in answer:
            raise CdpError(method + ": " + json.dumps(answer["error"]))
        return answer.get("result", {})

    def eval(self, expression, timeout=30):
        """The value of a JavaScript expression (awaited when a promise)."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            raise CdpError("evaluate: " + json.dumps(r["exceptionDetails"])[:500])
        return r["result"].get("value")

    def goto(self, url, timeout=30):
        self.call("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && location.href === " + json.dumps(url),
                      timeout)

    def wait_for(self, expression, timeout=30, what=None):
        deadline = time.monotonic() + timeout
        while True:
            if self.eval("Boolean(" + expression + ")"):
                return
            if time.monotonic() > deadline:
                raise CdpError("timed out waiting for " + (what or expression))
            time.sleep(0.2)

    def key(self, key, code=None):
        """One key press and release (for keyboard navigation)."""
        vk = {"ArrowRight": 39, "ArrowLeft": 37, "ArrowDown": 40, "ArrowUp": 38,
              "Enter": 13, "Tab": 9, "Home": 36, "End": 35}.get(key, 0)
        down = {"type": "keyDown" if key == "Enter" else "rawKeyDown", "key": key,
                "code": code or key, "windowsVirtualKeyCode": vk}
        if key == "Enter":
            down["text"] = "\r"
        self.call("Input.dispatchKeyEvent", down)
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": code or key,
                                             "windowsVirtualKeyCode": vk})

    def screenshot(self, path):
        """The whole page, not only the window, as a PNG."""
        m = self.call("Page.getLayoutMetrics")
        size = m.get("cssContentSize") or m["contentSize"]
        shot = self.call("Page.captureScreenshot",
                         {"format": "png", "captureBeyondViewport": True,
                          "clip": {"x": 0, "y": 0, "width": size["width"],
                                   "height": size["height"], "scale": 1}})
        import base64
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except CdpError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
