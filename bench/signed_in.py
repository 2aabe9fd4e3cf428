"""A signed-in home against the test server, for the benchmarks that need one (token,
intercept): the fixture started on loopback, `latch provider add atlassian` pointed at it, a
`jira` connector, and a browser sign-in through headless Chromium. Not a test."""
import contextlib
import json
import os
import socket
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATCH = os.path.join(ROOT, "target", "release", "latch")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SignedIn:
    """The fixture's base URL, the home's environment, and `latch` run in it."""

    def __init__(self, base, home, env):
        self.base = base
        self.home = home
        self.env = env

    def latch(self, *args, stdin=""):
        return subprocess.run([LATCH, *args], env=self.env, input=stdin, capture_output=True, text=True,
                              check=True)


@contextlib.contextmanager
def signed_in_home(site_url=False):
    """Builds the release `latch`, starts the fixture, signs in; `site_url`: sites resolve to the
    fixture too (`--site-url`)."""
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "latch"], cwd=ROOT, check=True)
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    env = dict(os.environ, FIXTURE_REDIRECT_URIS=redirect)
    fixture = subprocess.Popen(["node", os.path.join(ROOT, "tests/fixture/server.js")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = f"http://127.0.0.1:{json.loads(fixture.stdout.readline())['port']}"
        home = tempfile.mkdtemp(prefix="latch-bench-")
        lenv = dict(os.environ, LATCH_HOME=home, BROWSER=os.path.join(ROOT, "tests/fixture/browser.sh"))
        # The person's own proxy settings would send loopback calls elsewhere.
        for name in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"]:
            lenv.pop(name, None)
        signed = SignedIn(base, home, lenv)
        sites = ["--site-url", f"{base}/__site/{{site}}"] if site_url else []
        signed.latch("provider", "add", "atlassian", "--client-id", "latch-test-client", "--redirect-uri", redirect,
                     "--authorize-url", f"{base}/authorize", "--token-url", f"{base}/oauth/token",
                     "--resources-url", f"{base}/oauth/token/accessible-resources", "--me-url", f"{base}/me",
                     "--api-base", base, *sites, stdin="fixture-client-secret-0a9b8c7d")
        signed.latch("connector", "add", "jira")
        signed.latch("login", "atlassian", "--timeout", "60")
        yield signed
    finally:
        fixture.terminate()
