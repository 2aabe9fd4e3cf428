#!/usr/bin/env python3
"""Token lifecycle benchmark (not a test): prints figures from one run.

Run with `make bench-token` (it wraps this in scripts/with-keyring.sh). Measures, against the
fixture authorization server on loopback, with the release build of `latch`:
  - latency of `latch token jira` with a cached access token (whole process, p50/p99);
  - latency of `latch token jira` when the access token expired and a refresh happens;
  - a storm of concurrent `latch token` processes on an expired token: token-endpoint calls.
"""
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request

from signed_in import LATCH, signed_in_home

CACHED_RUNS = int(os.environ.get("BENCH_CACHED_RUNS", "200"))
REFRESH_RUNS = int(os.environ.get("BENCH_REFRESH_RUNS", "50"))
STORM = int(os.environ.get("BENCH_STORM", "64"))


def pct(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def main():
    with signed_in_home() as signed:
        base, home, lenv, latch = signed.base, signed.home, signed.env, signed.latch

        def stats():
            with urllib.request.urlopen(f"{base}/__stats") as r:
                return json.load(r)

        def expire():
            db = sqlite3.connect(os.path.join(home, "latch.db"))
            db.execute("UPDATE grants SET access_expires_at='2000-01-01T00:00:00Z', access_issued_at='1999-12-31T23:00:00Z'")
            db.commit()
            db.close()

        def timed():
            start = time.perf_counter()
            latch("token", "jira")
            return (time.perf_counter() - start) * 1000

        latch("token", "jira")
        cached = [timed() for _ in range(CACHED_RUNS)]
        before = stats()["token_calls"]["refresh_token"]
        refresh = []
        for _ in range(REFRESH_RUNS):
            expire()
            refresh.append(timed())
        refreshes = stats()["token_calls"]["refresh_token"] - before

        expire()
        before = stats()["token_calls"]["refresh_token"]
        start = time.perf_counter()
        procs = [subprocess.Popen([LATCH, "token", "jira"], env=lenv, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(STORM)]
        outputs = [p.communicate()[0].strip() for p in procs]
        storm_ms = (time.perf_counter() - start) * 1000
        storm_calls = stats()["token_calls"]["refresh_token"] - before
        failures = sum(1 for p in procs if p.returncode != 0)

        print("latch token benchmark (release build, fixture token endpoint on loopback, real Secret Service)")
        print(f"  cached token   runs={len(cached):4d}  p50={statistics.median(cached):7.2f} ms  p99={pct(cached, 99):7.2f} ms")
        print(f"  with refresh   runs={len(refresh):4d}  p50={statistics.median(refresh):7.2f} ms  p99={pct(refresh, 99):7.2f} ms"
              f"  token-endpoint calls={refreshes}")
        print(f"  refresh/cached p50 ratio = {statistics.median(refresh) / statistics.median(cached):.2f}")
        print(f"  storm          processes={STORM}  token-endpoint calls={storm_calls}  failures={failures}"
              f"  distinct tokens={len(set(outputs))}  wall={storm_ms:.0f} ms")


if __name__ == "__main__":
    sys.exit(main())
