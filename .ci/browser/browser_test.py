"""Browser test of jwtd: Debian's headless Chromium runs page.html, served from a second
loopback origin, against a real jwtd, in JSON mode and in cookie mode; the same page served from an
origin not in CORS_ALLOWED_ORIGINS must fail. The page posts what it saw to its own origin; this
script asserts on that.

Environment: JWTD_BIN (the release binary), SHARED (../shared, for harness/servers.py),
CHROMIUM (default: chromium).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ["SHARED"], "harness"))
import servers  # noqa: E402

PAGE = open(os.path.join(HERE, "page.html"), "rb").read()
CHROMIUM = os.environ.get("CHROMIUM", "chromium")
ACCESS_LIFETIME = 2


class Origin:
    """One loopback origin serving the page, its config, and collecting the page's reports."""

    def __init__(self, reports, arrived):
        self.config = {}
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = self.path.split("?")[0]
                if path in ("/", "/index.html"):
                    self._send(200, PAGE, "text/html; charset=utf-8")
                elif path == "/config.json":
                    self._send(200, json.dumps(origin.config).encode(), "application/json")
                else:
                    self._send(404, b"not found", "text/plain")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                report = json.loads(body)
                reports[report["phase"]] = report
                arrived.set()
                self._send(204, b"", "text/plain")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_browser(url, reports, arrived, wanted, timeout=60):
    profile = tempfile.mkdtemp(prefix="jwtd-chromium-")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", url]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + timeout
    try:
        while not wanted <= set(reports) and time.time() < deadline:
            arrived.wait(0.5)
            arrived.clear()
            if proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        stderr = proc.stderr.read().decode(errors="replace")
        shutil.rmtree(profile, ignore_errors=True)
    missing = wanted - set(reports)
    if missing:
        raise AssertionError(f"no report from {sorted(missing)} within {timeout}s; chromium said:\n{stderr[-3000:]}")


def steps(report):
    return {s["step"]: s for s in report["steps"]}


def metric(api, series):
    with urllib.request.urlopen(api + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
    return 0.0


def check(condition, what, report):
    if not condition:
        raise AssertionError(f"{what}\nreport: {json.dumps(report, indent=1)}")
    print(f"  ok: {what}")


def scenario(mode):
    print(f"== {mode} mode")
    reports, arrived = {}, threading.Event()
    app, evil = Origin(reports, arrived), Origin(reports, arrived)
    settings = {"ACCESS_TOKEN_LIFETIME": ACCESS_LIFETIME, "CORS_ALLOWED_ORIGINS": app.base,
                "REFRESH_COOKIE": mode == "cookie", "LOG_FORMAT": "json"}
    try:
        with servers.start("jwtd", settings) as srv:
            api = srv.base
            common = {"api": api, "mode": mode, "wait_ms": ACCESS_LIFETIME * 1000 + 1200}
            nxt = {"app": evil.base + "/"}
            if mode == "cookie":
                nxt["evil"] = app.base + "/?phase=logout"
            app.config = {**common, "role": "app", "next": nxt}
            evil.config = {**common, "role": "evil", "next": nxt}
            wanted = {"app", "evil"} | ({"logout"} if mode == "cookie" else set())
            started = time.time()
            run_browser(app.base + "/", reports, arrived, wanted)
            print(f"  browser done in {time.time() - started:.1f}s")

            s = steps(reports["app"])
            check(s["signup"]["status"] == 201, "sign-up from the allowed origin: 201", reports["app"])
            expected = ["access"] if mode == "cookie" else ["access", "refresh"]
            check(s["signin"]["status"] == 200 and s["signin"]["keys"] == expected,
                  f"sign-in: 200 with {expected} in the JSON", reports["app"])
            check(s["me"]["status"] == 200 and s["me"]["username_matches"], "GET /api/me/: 200, the user", reports["app"])
            check(s["me_expired"]["status"] == 401 and s["me_expired"]["code"] == "token_not_valid",
                  f"after {ACCESS_LIFETIME}s the access token is refused: 401", reports["app"])
            check(s["refresh"]["status"] == 200 and s["refresh"]["keys"] == ["access"],
                  "refresh: 200 with a new access token" + (" (token from the cookie)" if mode == "cookie" else ""),
                  reports["app"])
            check(s["me_refreshed"]["status"] == 200 and s["me_refreshed"]["username_matches"],
                  "GET /api/me/ with the new access token: 200", reports["app"])
            check(s["cookies_visible_to_script"]["value"] == "", "no cookie visible to the page's script",
                  reports["app"])

            e = steps(reports["evil"])
            check("error" in e["evil_signin"] and e["evil_signin"]["error"].startswith("TypeError"),
                  "the same page from an origin not allowed: sign-in fails (CORS)", reports["evil"])
            check("error" in e["evil_read"], "... and cannot read any answer", reports["evil"])

            if mode == "cookie":
                refused = metric(api, 'jwtd_tokens_rejected_total{reason="origin"}')
                check(refused >= 1, "its blind cookie refresh reached the server and was refused (403)",
                      reports["evil"])
                refreshed = metric(api, 'jwtd_tokens_refreshed_total{type="refresh"}')
                check(refreshed == 1, "only the allowed origin's refresh succeeded", reports["evil"])
                lo = steps(reports["logout"])
                check(lo["logout"]["status"] == 200, "logout (blacklist from the cookie): 200", reports["logout"])
                check(lo["refresh_after_logout"]["status"] == 400
                      and lo["refresh_after_logout"]["body"] == {"refresh": ["This field is required."]},
                      "after logout the cookie is gone: refresh has no token", reports["logout"])
            else:
                check(s["logout"]["status"] == 200, "logout (blacklist): 200", reports["app"])
                check(s["refresh_after_logout"]["status"] == 401
                      and s["refresh_after_logout"]["body"]["detail"] == "Token is blacklisted",
                      "after logout the refresh token is blacklisted", reports["app"])
            log = srv.log()
            secrets = s["secrets"]["values"]
            check(len(secrets) >= 3 and not any(v in log for v in secrets),
                  f"the server log ({len(log.splitlines())} lines) holds none of the page's password and tokens", {})
    finally:
        app.close()
        evil.close()


def main():
    started = time.time()
    for mode in ("json", "cookie"):
        scenario(mode)
    print(f"browser tests passed in {time.time() - started:.1f}s")


if __name__ == "__main__":
    main()
