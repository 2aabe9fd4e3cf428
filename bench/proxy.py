#!/usr/bin/env python3
"""Proxy benchmark (not a test): prints figures and ratios from one run.

`make bench-proxy` runs it inside scripts/with-keyring.sh. The same upstream (an nginx instance
answering a small JSON document on loopback) is reached
  (a) directly, (b) through Latch (release build, real token from the fixture's OAuth server),
  (c) through nginx `proxy_pass` with a static Authorization header and upstream keep-alive,
with wrk: requests/s at 64 connections (nginx with one worker, Latch with one runtime worker),
and p50/p99 latency at 1 connection, each measured BENCH_ROUNDS times (default 2) side by side.
A minimal hyper forwarder (crates/proxy/examples/bare_forwarder.rs: no key, policy, audit or
credential) runs beside them as the bare-forwarding reference.
Then 1 GiB is streamed through Latch and its peak RSS growth is read from /proc.

The users' workload (BENCH_WAN_ROUNDS, default 2): an HTTPS upstream (nginx, a test CA, HTTP/2
offered) one 20 ms round trip away behind bench/delay_relay.py, reached directly, through Latch
(a Data Center PAT connector; its JSON answers' links rewritten) and through nginx `proxy_pass`
with `keepalive 32`: (a) a new connection per request — 40 sequential `curl` processes, and 40
Python `requests.get` without a session — and (b) one keep-alive client (one `curl` with 40 URLs).
"""
import json
import os
import statistics
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from signed_in import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATCH = os.path.join(ROOT, "target", "release", "latch")
DURATION = os.environ.get("BENCH_DURATION", "5s")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CONNECTIONS = 64
# shared/reference/proxy-speed.md measured with -t2; -t1 leaves the proxy a core of its own.
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "1"))
GIB = 1 << 30
WAN_ROUNDS = int(os.environ.get("BENCH_WAN_ROUNDS", "2"))
WAN_REQUESTS = 40


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def nginx(conf_body):
    prefix = tempfile.mkdtemp(prefix="latch-bench-nginx-")
    os.makedirs(os.path.join(prefix, "logs"))
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write("worker_processes 1; daemon off; pid nginx.pid; error_log logs/error.log;\n"
                "events { worker_connections 4096; }\n"
                "http { access_log off; " + conf_body + " }\n")
    binary = "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "nginx"
    return subprocess.Popen([binary, "-p", prefix, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wrk(url, connections, headers=()):
    threads = min(connections, WRK_THREADS)
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{DURATION}", "--latency", url]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def lat(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 1, "ms": 1000, "s": 1_000_000}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_us": lat(50), "p99_us": lat(99), "non2xx": int(non2xx.group(1)) if non2xx else 0}


def thread_cpu(pid):
    """CPU seconds used so far by each thread of `pid`, summed by thread name."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        used[name] = used.get(name, 0) + (int(fields[11]) + int(fields[12])) / tick
    return used


def cpu_per_request(pid, run):
    """Runs `run` (a wrk call) and returns its result and the CPU µs per request of each thread."""
    before = thread_cpu(pid)
    result = run()
    after = thread_cpu(pid)
    done = result["rps"] * float(DURATION.rstrip("s"))
    return result, {name: (after[name] - before.get(name, 0)) * 1e6 / max(done, 1) for name in after}


def nginx_worker(master):
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else master


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    # Line tables only: symbols for `BENCH_PERF=1` profiles, no effect on the code.
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "latch", "--example", "bare_forwarder",
                    "-p", "latch", "-p", "latch-proxy"], cwd=ROOT, check=True,
                   env=dict(os.environ, CARGO_PROFILE_RELEASE_DEBUG="line-tables-only"))
    up_port, nginx_port = free_port(), free_port()
    files = tempfile.mkdtemp(prefix="latch-bench-files-")
    with open(os.path.join(files, "big.bin"), "wb") as f:
        f.truncate(GIB)  # sparse: 1 GiB served without 1 GiB on disk
    # nginx workers drop root: let them read it.
    os.chmod(files, 0o755)
    os.chmod(os.path.join(files, "big.bin"), 0o644)
    upstream = nginx(f"server {{ listen 127.0.0.1:{up_port}; "
                     f"location ~ __bytes$ {{ root {files}; try_files /big.bin =404; }} "
                     f"location / {{ default_type application/json; "
                     f"return 200 '{{\"ok\":true,\"source\":\"upstream\"}}'; }} }}")
    via_nginx = nginx(f"upstream up {{ server 127.0.0.1:{up_port}; keepalive 64; }} "
                      f"server {{ listen 127.0.0.1:{nginx_port}; location / {{ proxy_pass http://up; "
                      f"proxy_http_version 1.1; proxy_set_header Connection \"\"; "
                      f"proxy_set_header Authorization \"Bearer static-token\"; }} }}")
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    fixture = subprocess.Popen(["node", os.path.join(ROOT, "tests/fixture/server.js")],
                               env=dict(os.environ, FIXTURE_REDIRECT_URIS=redirect),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    serve = bare = None
    wan = []
    try:
        base = f"http://127.0.0.1:{json.loads(fixture.stdout.readline())['port']}"
        wait_port(up_port)
        wait_port(nginx_port)
        home = tempfile.mkdtemp(prefix="latch-bench-")
        env = dict(os.environ, LATCH_HOME=home, BROWSER=os.path.join(ROOT, "tests/fixture/browser.sh"))

        def latch(*args, stdin=""):
            return subprocess.run([LATCH, *args], env=env, input=stdin, capture_output=True, text=True, check=True).stdout

        # OAuth against the fixture; the API gateway is the nginx upstream.
        latch("provider", "add", "atlassian", "--client-id", "latch-test-client", "--redirect-uri", redirect,
              "--authorize-url", f"{base}/authorize", "--token-url", f"{base}/oauth/token",
              "--resources-url", f"{base}/oauth/token/accessible-resources", "--me-url", f"{base}/me",
              "--api-base", f"http://127.0.0.1:{up_port}", stdin="fixture-client-secret-0a9b8c7d")
        latch("connector", "add", "jira")
        latch("login", "atlassian", "--timeout", "60")
        # An API token (a static credential from the keychain) on the same upstream.
        latch("connector", "add", "jira-tok", "--type", "jira", "--auth", "api-token", "--email",
              "bench@example.test", "--token", "scoped", "--site", "11111111-2222-3333-4444-555555555555")
        latch("credential", "set", "jira-tok", stdin="bench-api-token")
        key = latch("keys", "create", "bench", "--connector", "jira", "--connector", "jira-tok").strip()
        serve = subprocess.Popen([LATCH, "serve", "--listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        latch_addr = serve.stdout.readline().strip().rsplit("http://", 1)[1]
        path = "/ex/jira/11111111-2222-3333-4444-555555555555/rest/api/3/myself"
        direct_url = f"http://127.0.0.1:{up_port}{path}"
        latch_url = f"http://{latch_addr}/jira/rest/api/3/myself"
        static_url = f"http://{latch_addr}/jira-tok/rest/api/3/myself"
        nginx_url = f"http://127.0.0.1:{nginx_port}{path}"
        auth = [f"Authorization: Bearer {key}"]
        urllib.request.urlopen(urllib.request.Request(latch_url, headers={"Authorization": f"Bearer {key}"})).read()
        bare = subprocess.Popen([os.path.join(ROOT, "target", "release", "examples", "bare_forwarder"),
                                 f"http://127.0.0.1:{up_port}"], stdout=subprocess.PIPE, text=True)
        bare_url = f"http://{bare.stdout.readline().strip().rsplit('http://', 1)[1]}{path}"
        if os.environ.get("BENCH_ONLY") == "wan":  # for a quick look at the users' workload alone
            wan_bench(env, latch, latch_addr, wan)
            return

        rss_idle = rss_kib(serve.pid, "VmRSS")
        if os.environ.get("BENCH_PERF"):
            rec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "1000", "--call-graph", "dwarf,16384", "-o", "/tmp/latch.perf", "-p", str(serve.pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wrk(latch_url, CONNECTIONS, auth)
            rec.send_signal(2)
            rec.wait()
        if os.environ.get("BENCH_STRACE"):
            # Syscalls per proxied request, Latch and nginx, under the same load.
            for name, pid, url, headers in [("latch", serve.pid, latch_url, auth),
                                            ("nginx", nginx_worker(via_nginx.pid), nginx_url, [])]:
                tracer = subprocess.Popen(["strace", "-f", "-c", "-o", f"/tmp/strace-{name}.txt", "-p", str(pid)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.5)  # strace attaching; not a measurement
                done = wrk(url, CONNECTIONS, headers)
                tracer.send_signal(2)
                tracer.wait()
                with open(f"/tmp/strace-{name}.txt") as f:
                    total = [l for l in f.read().splitlines() if l.strip().endswith("total")]
                calls = int(total[0].split()[3]) if total else 0
                print(f"{name}: {calls / max(done['rps'] * float(DURATION.rstrip('s')), 1):.1f} syscalls per request "
                      f"(under strace: {done['rps']:.0f} req/s)")
        rounds = []
        for _ in range(ROUNDS):
            results = {}
            for name, url, headers in [("direct", direct_url, []), ("latch", latch_url, auth), ("nginx", nginx_url, []),
                                       ("bare", bare_url, [])]:
                results[name] = {"throughput": wrk(url, CONNECTIONS, headers), "latency": wrk(url, 1, headers)}
            rounds.append(results)
        # Where the CPU goes at 64 connections: each Latch thread, the nginx proxy worker, and the
        # upstream both share.
        _, latch_cpu = cpu_per_request(serve.pid, lambda: wrk(latch_url, CONNECTIONS, auth))
        _, nginx_cpu = cpu_per_request(nginx_worker(via_nginx.pid), lambda: wrk(nginx_url, CONNECTIONS))
        static = wrk(static_url, CONNECTIONS, auth)
        rss_after_load = rss_kib(serve.pid, "VmHWM")
        refusal = wrk(f"http://{latch_addr}/jira/rest/api/3/myself", CONNECTIONS)
        results_refusal = refusal["rps"]

        start = time.perf_counter()
        got = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "-H", auth[0],
                              f"http://{latch_addr}/jira/__bytes"], check=True, capture_output=True, text=True).stdout
        if got != f"200 {GIB}":
            raise RuntimeError(f"the 1 GiB download through Latch failed: {got}")
        download_s = time.perf_counter() - start
        hwm_before_stream = rss_after_load
        rss_peak = rss_kib(serve.pid, "VmHWM")

        print(f"proxy benchmark: wrk -t{WRK_THREADS}, {DURATION} per run, {ROUNDS} rounds, upstream = nginx static JSON on "
              f"loopback, Latch release build ({os.cpu_count()} cores shared by wrk, upstream, proxy)")
        for i, results in enumerate(rounds, 1):
            d, l, n, b = results["direct"], results["latch"], results["nginx"], results["bare"]
            print(f"round {i}: {'':1} {'req/s @' + str(CONNECTIONS) + 'c':>12} {'p50 @1c':>10} {'p99 @1c':>10} {'non-2xx':>8}")
            for name, r in results.items():
                print(f"  {name:8} {r['throughput']['rps']:12.0f} {r['latency']['p50_us']:8.0f}us {r['latency']['p99_us']:8.0f}us "
                      f"{r['throughput']['non2xx'] + r['latency']['non2xx']:8d}")
            print(f"  latch/nginx throughput = {l['throughput']['rps'] / n['throughput']['rps']:.2f}; "
                  f"latch/direct = {l['throughput']['rps'] / d['throughput']['rps']:.2f}; "
                  f"added p50 over direct: latch {l['latency']['p50_us'] - d['latency']['p50_us']:+.0f} us, "
                  f"nginx {n['latency']['p50_us'] - d['latency']['p50_us']:+.0f} us, "
                  f"bare hyper {b['latency']['p50_us'] - d['latency']['p50_us']:+.0f} us "
                  f"(latch - bare = {l['latency']['p50_us'] - b['latency']['p50_us']:+.0f} us; target <= +15)")
        print(f"latch with an API token (keychain credential): {static['rps']:.0f} req/s @64c, non-2xx {static['non2xx']}")
        print(f"latch refusing (401, no upstream): {results_refusal:.0f} req/s")
        shown = ", ".join(f"{name} {us:.1f}" for name, us in sorted(latch_cpu.items(), key=lambda kv: -kv[1]) if us >= 0.05)
        print(f"CPU per request @64c: latch {sum(latch_cpu.values()):.1f} us ({shown}); "
              f"nginx proxy worker {sum(nginx_cpu.values()):.1f} us")
        print(f"latch RSS: idle {rss_idle / 1024:.1f} MiB, peak after load {rss_after_load / 1024:.1f} MiB, "
              f"peak after streaming 1 GiB {rss_peak / 1024:.1f} MiB "
              f"(growth while streaming {(rss_peak - hwm_before_stream) / 1024:.1f} MiB; "
              f"1 GiB in {download_s:.1f} s = {GIB / download_s / 1e6:.0f} MB/s)")
        if os.environ.get("BENCH_ONLY") != "loopback":
            wan_bench(env, latch, latch_addr, wan)
    finally:
        for p in (serve, fixture, upstream, via_nginx, bare, *wan):
            if p:
                p.terminate()


def timed(run):
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1000


def wan_bench(env, latch, latch_addr, procs):
    """The users' workload: an HTTPS upstream 20 ms away, new connections vs one keep-alive client."""
    certs = tempfile.mkdtemp(prefix="latch-bench-tls-")
    ca, ca_key, cert, key, csr = (os.path.join(certs, n) for n in ("ca.pem", "ca.key", "cert.pem", "key.pem", "cert.csr"))
    quiet = dict(check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Latch bench CA",
                    "-keyout", ca_key, "-out", ca], **quiet)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", csr],
                   **quiet)
    ext = os.path.join(certs, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
                    "-extfile", ext, "-out", cert], **quiet)
    os.chmod(certs, 0o755)
    for name in os.listdir(certs):
        os.chmod(os.path.join(certs, name), 0o644)
    tls_port, nginx_port = free_port(), free_port()
    # -I: bench/token.py must not shadow the standard library's `token` module.
    relay = subprocess.Popen([sys.executable, "-I", os.path.join(ROOT, "bench", "delay_relay.py"), str(tls_port)],
                             stdout=subprocess.PIPE, text=True)
    procs.append(relay)
    relay_port = int(relay.stdout.readline())
    upstream = nginx(f"server {{ listen 127.0.0.1:{tls_port} ssl http2; ssl_certificate {cert}; "
                     f"ssl_certificate_key {key}; keepalive_timeout 300s; keepalive_requests 100000; "
                     f"location / {{ default_type application/json; "
                     f"return 200 '{{\"self\":\"https://localhost:{relay_port}/rest/api/2/myself\",\"ok\":true}}'; }} }}")
    procs.append(upstream)
    wait_port(tls_port)
    via_nginx = nginx(f"upstream wan {{ server 127.0.0.1:{relay_port}; keepalive 32; }} "
                      f"server {{ listen 127.0.0.1:{nginx_port}; location / {{ proxy_pass https://wan; "
                      f"proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host localhost; "
                      f"proxy_ssl_trusted_certificate {ca}; proxy_ssl_verify on; proxy_ssl_name localhost; "
                      f"proxy_ssl_server_name on; proxy_ssl_session_reuse on; "
                      f"proxy_set_header Authorization \"Bearer static-token\"; }} }}")
    procs.append(via_nginx)
    wait_port(nginx_port)
    latch("provider", "add", "wan", "--preset", "jira-dc", "--base-url", f"https://localhost:{relay_port}",
          "--ca-file", ca)
    latch("connector", "add", "wan", "--type", "jira-dc", "--provider", "wan", "--auth", "pat")
    subprocess.run([LATCH, "credential", "set", "wan"], env=env, input="bench-pat", capture_output=True, text=True)
    key = latch("keys", "create", "bench-wan", "--connector", "wan").strip()
    path = "/rest/api/2/myself"
    urls = {
        "direct": (f"https://localhost:{relay_port}{path}", []),
        "latch": (f"http://{latch_addr}/wan{path}", ["-H", f"Authorization: Bearer {key}"]),
        "nginx": (f"http://127.0.0.1:{nginx_port}{path}", []),
    }

    def curl_each(url, headers):
        for _ in range(WAN_REQUESTS):
            subprocess.run(["curl", "-sf", "-o", "/dev/null", "--cacert", ca, *headers, url], check=True)

    def curl_one(url, headers):
        subprocess.run(["curl", "-sf", "--cacert", ca, *headers, *(["-o", "/dev/null", url] * WAN_REQUESTS)],
                       check=True)

    def requests_each(url, headers):
        header = dict([headers[1].split(": ", 1)]) if headers else {}
        script = ("import requests, sys\n"
                  f"for _ in range({WAN_REQUESTS}):\n"
                  f"    requests.get({url!r}, headers={header!r}, verify={ca!r}).raise_for_status()\n")
        subprocess.run([sys.executable, "-c", script], check=True)

    for name, (url, headers) in urls.items():
        curl_one(url, headers)  # warm: the pools hold a connection, as they would in use
    workloads = [("new connection per request: 40 curl processes", curl_each),
                 ("new connection per request: 40 requests.get, no session", requests_each),
                 ("one keep-alive client: one curl, 40 requests", curl_one)]
    figures = {w: {n: [] for n in urls} for w, _ in workloads}
    for _ in range(WAN_ROUNDS):
        for workload, run in workloads:
            for name, (url, headers) in urls.items():
                figures[workload][name].append(timed(lambda: run(url, headers)))
    print(f"users' workload: HTTPS upstream (nginx, HTTP/2 offered) 20 ms round trip away (delay relay), "
          f"{WAN_REQUESTS} requests, {WAN_ROUNDS} rounds, median ms")
    print(f"  {'':58} {'direct':>8} {'latch':>8} {'nginx':>8} {'latch/nginx':>12} {'latch/direct':>13}")
    for workload, _ in workloads:
        m = {n: statistics.median(v) for n, v in figures[workload].items()}
        print(f"  {workload:58} {m['direct']:8.0f} {m['latch']:8.0f} {m['nginx']:8.0f} "
              f"{m['latch'] / m['nginx']:12.2f} {m['latch'] / m['direct']:13.2f}")


if __name__ == "__main__":
    main()
