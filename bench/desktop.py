#!/usr/bin/env python3
"""Desktop app benchmark (not a test): prints figures from one run.

Run with `make bench-desktop` (release build, under Xvfb, real Secret Service via
scripts/with-keyring.sh). Measures, for the release `latch-desktop`:
  - cold start to first paint: from asking WebKitWebDriver to launch the app to the webview's
    first contentful paint (and to the first rendered status);
  - idle RSS after 60 s (the app process, and with its WebKit helper processes);
  - RSS with 20 connectors configured.
Targets: first paint < 1 s, idle RSS < 100 MiB.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "target", "release", "latch-desktop")
LATCH = os.path.join(ROOT, "target", "release", "latch")
IDLE_SECS = int(os.environ.get("BENCH_IDLE_SECS", "60"))
RUNS = int(os.environ.get("BENCH_START_RUNS", "5"))


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


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


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
                                       stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def start(self):
        t0 = time.time()
        value = wd(self.base, "POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "wry", "tauri:options": {"application": APP}}}})
        self.session = f"{self.base}/session/{value['sessionId']}"
        while True:
            ready = wd(self.session, "POST", "/execute/sync", {"script": """
                const fcp = performance.getEntriesByName('first-contentful-paint')[0]
                  || performance.getEntriesByType('paint')[0];
                return {origin: performance.timeOrigin, fcp: fcp ? fcp.startTime : null,
                        status: !!document.querySelector('[data-testid=overall]'), now: Date.now()};
            """, "args": []})
            if ready["status"]:
                break
        paint = (ready["origin"] + ready["fcp"]) / 1000 - t0 if ready["fcp"] is not None else None
        rendered = ready["now"] / 1000 - t0
        return paint, rendered

    def stop(self):
        try:
            wd(self.session, "DELETE", "")
        except Exception:
            pass
        self.driver.terminate()
        self.driver.wait()


def memory():
    pid = app_pid()
    if pid is None:
        return 0, 0
    return rss_kib(pid) / 1024, sum(rss_kib(p) for p in descendants(pid)) / 1024


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
        paints, renders = [], []
        for _ in range(RUNS):
            d = Desktop(home_with(0), display)
            paint, rendered = d.start()
            d.stop()
            if paint is not None:
                paints.append(paint)
            renders.append(rendered)
        paints.sort()
        renders.sort()
        if paints:
            print(f"cold start → first contentful paint: median {paints[len(paints) // 2] * 1000:.0f} ms "
                  f"(min {paints[0] * 1000:.0f}, max {paints[-1] * 1000:.0f}; {len(paints)} runs; target < 1000 ms)")
        print(f"cold start → status rendered:        median {renders[len(renders) // 2] * 1000:.0f} ms "
              f"(min {renders[0] * 1000:.0f}, max {renders[-1] * 1000:.0f})")

        d = Desktop(home_with(0), display)
        d.start()
        time.sleep(IDLE_SECS)  # a benchmark measures idle memory after a while; not a test
        app, total = memory()
        print(f"idle RSS after {IDLE_SECS} s: app {app:.1f} MiB, with WebKit processes {total:.1f} MiB "
              f"(target < 100 MiB; ratio {app / 100:.2f} / {total / 100:.2f})")
        d.stop()

        d = Desktop(home_with(20), display)
        d.start()
        time.sleep(10)
        app20, total20 = memory()
        print(f"RSS with 20 connectors after 10 s: app {app20:.1f} MiB, with WebKit processes {total20:.1f} MiB")
        d.stop()
    finally:
        xvfb.terminate()


if __name__ == "__main__":
    main()
