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
import os
import statistics
import subprocess
import time

from signed_in import LATCH, signed_in_home

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
SITE = "https://acme.atlassian.net/rest/api/3/myself"


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
    with signed_in_home(site_url=True) as signed:
        lenv = signed.env
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


if __name__ == "__main__":
    main()
