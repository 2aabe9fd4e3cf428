#!/usr/bin/env python3
"""Desktop app benchmark (not a test): prints figures from one run.

Run with `make bench-desktop` (release build, under Xvfb, real Secret Service via
scripts/with-keyring.sh). Measures, for the release `latch-desktop`:
  - cold start to first paint: from asking WebKitWebDriver to launch the app to the first frame
    painted with the connector status in it (an upper bound: WebDriver's polling is included);
  - idle memory after 30 s with the window open (the app process, and with its WebKit helper
    processes), PSS beside RSS;
  - idle memory after 30 s in the tray: the window closed (its process and its WebKit processes
    end; `latch tray` keeps serving), and `latch-desktop --tray` as autostart starts it;
  - the window opened again beside the tray: time to the first frame painted with the status;
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

from signed_in import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "target", "release", "latch-desktop")
LATCH = os.path.join(ROOT, "target", "release", "latch")
IDLE_SECS = int(os.environ.get("BENCH_IDLE_SECS", "30"))
RUNS = int(os.environ.get("BENCH_START_RUNS", "10"))


def wd(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}").get("value")


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
        self.home = home
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
        stop_home(self.home)  # the tray the app started outlives the window


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


def processes_of(home):
    """(pid, name) of every process whose environment names this home."""
    needle = f"LATCH_HOME={home}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/comm") as f:
                found.append((int(entry), f.read().strip()))
        except OSError:
            pass
    return found


def home_memory(home):
    """{process name: (rss, pss, anon) MiB} summed over the home's processes."""
    parts = {}
    for pid, name in processes_of(home):
        if name in ("tauri-driver", "WebKitWebDriver"):
            continue
        values = [v / 1024 for v in rollup(pid)]
        old = parts.get(name, (0.0, 0.0, 0.0))
        parts[name] = tuple(a + b for a, b in zip(old, values))
    return parts


def show_parts(label, parts):
    total = [sum(v[i] for v in parts.values()) for i in range(3)]
    each = ", ".join(f"{name} {v[1]:.1f}" for name, v in sorted(parts.items()))
    print(f"{label}: all of Latch's processes RSS {total[0]:.1f} MiB, PSS {total[1]:.1f} "
          f"(anonymous {total[2]:.1f}); PSS by process: {each}")


def wait_for(done, within=30):
    deadline = time.time() + within
    while not done():
        if time.time() > deadline:
            raise TimeoutError("the processes did not reach the expected state")
        time.sleep(0.1)


def stop_home(home):
    for pid, _ in processes_of(home):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    wait_for(lambda: not processes_of(home))


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

        # Memory as a person has it, without WebDriver. The window is its own process; the tray
        # (`latch tray`, started by the window when nobody serves the home) serves the proxy and
        # stays when the window closes. The app logs when a window has painted its status.
        home = home_with(0)
        env = app_env(home, display)
        app = Launched(home, display)
        try:
            app.painted()
            time.sleep(IDLE_SECS)  # a benchmark measures idle memory after a while; not a test
            open_parts = home_memory(home)
            app.stop()  # as closing the window does: its process and its WebKit processes end
            wait_for(lambda: not any(n.startswith("WebKit") or n == "latch-desktop"
                                     for _, n in processes_of(home)))
            time.sleep(IDLE_SECS)
            closed_parts = home_memory(home)
            asked = time.time()
            again = Launched(home, display)
            try:
                reopened_ms, seen_at = again.painted()
                reopened_wall = seen_at - asked
            finally:
                again.stop()
        finally:
            app.stop()
            stop_home(home)
        show_parts(f"window open, idle after {IDLE_SECS} s", open_parts)
        show_parts(f"window closed, the tray idle after {IDLE_SECS} s", closed_parts)

        # Autostart: `latch-desktop --tray` hands over to `latch tray`; no window, no WebKit.
        home = home_with(0)
        subprocess.Popen([APP, "--tray"], env=app_env(home, display), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: any(n == "latch" for _, n in processes_of(home)))
            time.sleep(IDLE_SECS)
            tray_parts = home_memory(home)
        finally:
            stop_home(home)
        show_parts(f"started with --tray (autostart), idle after {IDLE_SECS} s", tray_parts)
        closed_pss, tray_pss, open_pss = (sum(v[1] for v in parts.values())
                                          for parts in (closed_parts, tray_parts, open_parts))
        print(f"  target in the tray <= 60 MiB PSS (all of Latch's processes): ratio closed "
              f"{closed_pss / 60:.2f}, --tray {tray_pss / 60:.2f}; window open PSS {open_pss:.1f} MiB "
              f"= x{open_pss / max(closed_pss, 0.1):.1f} the tray's")
        print(f"window opened again beside the tray → its status painted: {reopened_ms} ms after the "
              f"window process started ({reopened_wall * 1000:.0f} ms wall; target < 1000 ms, "
              f"ratio {reopened_wall:.2f})")

        with Desktop(home_with(20), display) as d:
            d.start()
            time.sleep(10)
            parts20 = home_memory(d.home)
        show_parts("20 connectors, window open, after 10 s", parts20)
    finally:
        xvfb.terminate()


if __name__ == "__main__":
    main()
