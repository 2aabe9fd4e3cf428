#!/usr/bin/env python3
"""`latch exec --intercept` benchmark (not a test): prints figures side by side from one run.

Run with `make bench-intercept` (it wraps this in scripts/with-keyring.sh). Against the fixture
(its endpoints in place of Atlassian's), release build, median of BENCH_ROUNDS runs each:
  - start-up: `latch exec --intercept -- true` beside `latch exec -- true`;
  - one curl, 50 requests on one connection: by the real host name under intercept, beside
    `$LATCH_JIRA_URL` through the exec's private proxy;
  - 20 curl processes (a TLS handshake and a CA bundle read each), the same two ways;
  - how long curl takes to read the child's CA bundle alone (what any curl pays for its roots).
"""
import json
import os
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATCH = os.path.join(ROOT, "target", "release", "latch")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
SITE = "https://acme.atlassian.net/rest/api/3/myself"


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def median_ms(env, argv):
    subprocess.run(argv, env=env, check=True, capture_output=True)  # warm-up
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def row(name, a, b):
    print(f"{name:<44} {a:9.1f} {b:9.1f} {a / b:7.2f}")


def main():
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "latch"], cwd=ROOT, check=True)
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    env = dict(os.environ, FIXTURE_REDIRECT_URIS=redirect)
    fixture = subprocess.Popen(["node", os.path.join(ROOT, "tests/fixture/server.js")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = f"http://127.0.0.1:{json.loads(fixture.stdout.readline())['port']}"
        home = tempfile.mkdtemp(prefix="latch-bench-")
        lenv = dict(os.environ, LATCH_HOME=home, BROWSER=os.path.join(ROOT, "tests/fixture/browser.sh"))
        for name in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"]:
            lenv.pop(name, None)

        def latch(*args, stdin=""):
            return subprocess.run([LATCH, *args], env=lenv, input=stdin, capture_output=True, text=True, check=True)

        latch("provider", "add", "atlassian", "--client-id", "latch-test-client", "--redirect-uri", redirect,
              "--authorize-url", f"{base}/authorize", "--token-url", f"{base}/oauth/token",
              "--resources-url", f"{base}/oauth/token/accessible-resources", "--me-url", f"{base}/me",
              "--api-base", base, "--site-url", f"{base}/__site/{{site}}",
              stdin="fixture-client-secret-0a9b8c7d")
        latch("connector", "add", "jira")
        latch("login", "atlassian", "--timeout", "60")

        exec_i = [LATCH, "exec", "--intercept", "--connector", "jira", "--"]
        exec_p = [LATCH, "exec", "--connector", "jira", "--"]
        many = " ".join(f"-o /dev/null {SITE}" for _ in range(50))
        many_p = "$(for i in $(seq 50); do printf -- '-o /dev/null %s ' \"$LATCH_JIRA_URL/rest/api/3/myself\"; done)"
        print(f"{'median ms (' + str(ROUNDS) + ' runs)':<44} {'intercept':>9} {'exec':>9} {'ratio':>7}")
        row("start-up (`-- true`)", median_ms(lenv, exec_i + ["true"]), median_ms(lenv, exec_p + ["true"]))
        row("one curl, 50 requests on one connection",
            median_ms(lenv, exec_i + ["sh", "-c", f"curl -sf -H 'Authorization: Bearer d' {many}"]),
            median_ms(lenv, exec_p + ["sh", "-c", f"curl -sf -H \"Authorization: Bearer $LATCH_KEY\" {many_p}"]))
        row("20 curl processes, one request each",
            median_ms(lenv, exec_i + ["sh", "-c", f"for i in $(seq 20); do curl -sf -o /dev/null {SITE}; done"]),
            median_ms(lenv, exec_p + ["sh", "-c", "for i in $(seq 20); do curl -sf -o /dev/null "
                                                  "-H \"Authorization: Bearer $LATCH_KEY\" "
                                                  "$LATCH_JIRA_URL/rest/api/3/myself; done"]))
        bundle = median_ms(lenv, exec_i + ["sh", "-c", "for i in $(seq 20); do openssl verify -CAfile "
                                                       "\"$SSL_CERT_FILE\" /dev/null 2>/dev/null; done; true"])
        print(f"reading the child's CA bundle (OpenSSL), per process: {bundle / 20:.1f} ms")
    finally:
        fixture.terminate()


if __name__ == "__main__":
    main()
