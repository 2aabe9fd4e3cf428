#!/usr/bin/env python3
"""Desktop app benchmark (not a test): prints figures from one run.

Run with `make bench-desktop` (release build, under Xvfb, real Secret Service via
scripts/with-keyring.sh). Measures, for the release `latch-desktop`:
  - cold start to first paint: from asking WebKitWebDriver to launch the app to the first frame
    painted with the connector status in it (an upper bound: WebDriver's polling is included);
  - idle memory after 30 s with the window open (the app process, and with its WebKit helper
    processes), PSS beside RSS;
  - idle memory after 30 s in the tray: the window closed (its webview and WebKit processes
    freed), and the app started with `--tray` as autostart does;
  - the window opened again from the tray (a second launch asks the running app for it): time to
    the first frame painted with the status in it;
  - memory with 20 connectors configured.
Targets: first paint < 1 s (cold and reopened), idle in the tray <= 60 MiB PSS for all of
Latch's processes.
"""
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "target", "release", "latch-desktop")
LATCH = os.path.join(ROOT, "target", "release", "latch")
IDLE_SECS = int(os.environ.get("BENCH_IDLE_SECS", "30"))
RUNS = int(os.environ.get("BENCH_START_RUNS", "10"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wd(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}").get("value")


def descendants(pid):
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children = {}
    for line in out.split("\n"):
        if line.strip():
            p, pp = map(int, line.split())
            children.setdefault(pp, []).append(p)
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(children.get(p, []))
    return seen


def app_pid():
    out = subprocess.run(["pgrep", "-f", "^" + APP], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def home_with(connectors):
    home = tempfile.mkdtemp(prefix="latch-bench-desktop-")
    env = {**os.environ, "LATCH_HOME": home}
    subprocess.run([LATCH, "provider", "add", "atlassian", "--client-id", "bench-client"],
                   input=b"bench-secret", env=env, check=True, capture_output=True)
    kinds = ["jira", "confluence", "jsm", "bitbucket"]
    if connectors:
        subprocess.run([LATCH, "provider", "add", "bitbucket", "--client-id", "bench-bb"],
                       input=b"bench-secret", env=env, check=True, capture_output=True)
    for i in range(connectors):
        kind = kinds[i % len(kinds)]
        subprocess.run([LATCH, "connector", "add", f"{kind}-{i + 1}", "--type", kind], env=env,
                       check=True, capture_output=True)
    with open(os.path.join(home, "latch.toml"), "a") as f:
        f.write(f'\n[proxy]\nlisten = "127.0.0.1:{free_port()}"\n')
    return home


class Desktop:
    def __init__(self, home, display):
        self.port, native = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LATCH_")}
        env.update(LATCH_HOME=home, DISPLAY=display, HOME=home)
        self.driver = subprocess.Popen(["tauri-driver", "--port", str(self.port), "--native-port",
                                        str(native)], env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = None
        # tauri-driver listens before WebKitWebDriver does; a session request sent too early is dropped.
        deadline = time.time() + 30
        for port in (self.port, native):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.05)

    def start(self):
        """Seconds from asking for the app to the first frame painted with the status in it
        (an upper bound: it includes WebDriver's polling), and to the WebDriver session."""
        t0 = time.time()
        value = wd(self.base, "POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "wry", "tauri:options": {"application": APP}}}})
        attached = time.time() - t0
        self.session = f"{self.base}/session/{value['sessionId']}"
        while not wd(self.session, "POST", "/execute/sync", {
                "script": "return !!document.querySelector('[data-testid=overall]')", "args": []}):
            time.sleep(0.02)  # polling interval, part of the (upper-bound) figure
        # Two animation frames after the status exists: the frame holding it was painted.
        painted = wd(self.session, "POST", "/execute/async", {"script": """
            const done = arguments[arguments.length - 1];
            requestAnimationFrame(() => requestAnimationFrame(() => done(Date.now())));
        """, "args": []})
        return painted / 1000 - t0, attached

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()

    def stop(self):
        try:
            if self.session:
                wd(self.session, "DELETE", "")
        except Exception:
            pass
        # The whole session: tauri-driver, WebKitWebDriver and the app.
        try:
            os.killpg(self.driver.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.driver.wait()


def rollup(pid):
    """RSS, PSS and anonymous KiB of one process (PSS splits shared library pages fairly)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if parts[0] in ("Rss:", "Pss:", "Anonymous:"):
                    fields[parts[0][:-1]] = int(parts[1])
    except FileNotFoundError:
        pass
    return fields.get("Rss", 0), fields.get("Pss", 0), fields.get("Anonymous", 0)


def memory(pid=None):
    """(rss, pss, anon) MiB of the app process and of the app with its WebKit processes."""
    pid = pid or app_pid()
    if pid is None:
        return (0, 0, 0), (0, 0, 0)
    app = [v / 1024 for v in rollup(pid)]
    total = [0.0, 0.0, 0.0]
    for p in descendants(pid):
        for i, v in enumerate(rollup(p)):
            total[i] += v / 1024
    return tuple(app), tuple(total)


def show(label, app, total):
    print(f"{label}: app RSS {app[0]:.1f} MiB (PSS {app[1]:.1f}, anonymous {app[2]:.1f}); "
          f"all of Latch's processes RSS {total[0]:.1f} MiB (PSS {total[1]:.1f}, anonymous {total[2]:.1f})")


def app_env(home, display):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATCH_")}
    env.update(LATCH_HOME=home, DISPLAY=display, HOME=home)
    return env


class Launched:
    """The app started directly (no WebDriver), its log read for "the window painted" lines."""

    def __init__(self, home, display, *args):
        env = app_env(home, display)
        env["LATCH_LOG"] = "info"
        self.proc = subprocess.Popen([APP, *args], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.put((time.time(), line))

    def painted(self, within=30):
        """(ms the app measured, when the line was seen) for the next painted window."""
        deadline = time.time() + within
        while True:
            at, line = self.lines.get(timeout=max(deadline - time.time(), 0.1))
            found = re.search(r"\bms=(\d+)", line)
            if found and "the window painted its status" in line:
                return int(found.group(1)), at

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def main():
    for tool in ("Xvfb", "tauri-driver", "WebKitWebDriver"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            sys.exit(f"{tool} is missing: run `make deps` first")
    print("building release binaries…", flush=True)
    subprocess.run(["make", "-s", "ui"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "latch-desktop", "-p",
                    "latch"], cwd=ROOT, check=True)
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten",
                             "tcp"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    display = ":" + xvfb.stdout.readline().decode().strip()
    try:
        paints, attaches, lost = [], [], 0
        for _ in range(RUNS):
            with Desktop(home_with(0), display) as d:
                try:
                    paint, attached = d.start()
                except OSError as err:
                    # WebKitWebDriver sometimes drops the session while the page loads.
                    print(f"  a run lost its WebDriver session ({err}); not counted", flush=True)
                    lost += 1
                    continue
            paints.append(paint)
            attaches.append(attached)
        paints.sort()
        attaches.sort()
        print(f"cold start → first frame with the status painted: median {paints[len(paints) // 2] * 1000:.0f} ms "
              f"(min {paints[0] * 1000:.0f}, max {paints[-1] * 1000:.0f}; {len(paints)} runs, {lost} lost; target < 1000 ms, "
              f"ratio {paints[len(paints) // 2]:.2f})")
        print(f"  of which launching the app and attaching WebDriver: median {attaches[len(attaches) // 2] * 1000:.0f} ms")

        # Memory as a person has it, without WebDriver: the window open, then closed to the tray
        # (a second launch with --tray closes it, as the window's close button does), then
        # opened again; the app logs when a window has painted its status.
        home = home_with(0)
        app = Launched(home, display)
        try:
            app.painted()
            time.sleep(IDLE_SECS)  # a benchmark measures idle memory after a while; not a test
            open_app, open_total = memory(app.pid)
            subprocess.run([APP, "--tray"], env=app_env(home, display), timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(IDLE_SECS)
            closed_app, closed_total = memory(app.pid)
            asked = time.time()
            subprocess.run([APP], env=app_env(home, display), timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            reopened_ms, seen_at = app.painted()
            reopened_wall = seen_at - asked
        finally:
            app.stop()
        show(f"window open, idle after {IDLE_SECS} s", open_app, open_total)
        show(f"window closed to the tray, idle after {IDLE_SECS} s", closed_app, closed_total)

        # Autostart: the app starts in the tray and never builds the window.
        tray = Launched(home_with(0), display, "--tray")
        try:
            time.sleep(IDLE_SECS)
            tray_app, tray_total = memory(tray.pid)
        finally:
            tray.stop()
        show(f"started with --tray, idle after {IDLE_SECS} s", tray_app, tray_total)
        print(f"  target in the tray <= 60 MiB PSS (all processes): ratio closed {closed_total[1] / 60:.2f}, "
              f"--tray {tray_total[1] / 60:.2f}; window open PSS {open_total[1]:.1f} MiB = "
              f"x{open_total[1] / max(closed_total[1], 0.1):.1f} the tray's")
        print(f"window reopened from the tray → its status painted: {reopened_ms} ms after the app was asked "
              f"({reopened_wall * 1000:.0f} ms from the second launch's start; target < 1000 ms, "
              f"ratio {reopened_wall:.2f})")

        with Desktop(home_with(20), display) as d:
            d.start()
            time.sleep(10)
            app20, total20 = memory()
        show("20 connectors after 10 s", app20, total20)
    finally:
        xvfb.terminate()


if __name__ == "__main__":
    main()
