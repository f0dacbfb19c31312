"""Forward-auth through a real nginx (.ci/steps/45-nginx.sh); standard library only.

Runs README.md's nginx `auth_request` snippet as written (only its two addresses replaced) in front
of a small upstream that records the headers it receives, against the jwtd binary in JWTD_BIN:
a good access token is let through with its user's id in X-Auth-User-Id (the client's own X-Auth-*
headers replaced), no token and a token revoked by logout-all are refused with 401 and never reach
the upstream.
"""

import base64
import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on port {port}")


def call(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, data, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Upstream(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):
        self.do_GET()

    do_PUT = do_DELETE = do_HEAD = do_POST

    def do_GET(self):
        Upstream.seen.append(dict(self.headers.items()))
        body = b"hello from upstream"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def readme_snippet():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    blocks = re.findall(r"```nginx\n(.*?)```", readme, re.S)
    snippet = next((b for b in blocks if "auth_request" in b), None)
    if snippet is None:
        sys.exit("README.md has no nginx block with auth_request")
    return snippet


def main():
    jwtd_bin = os.environ["JWTD_BIN"]
    work = tempfile.mkdtemp(prefix="jwtd-nginx-")
    jwtd_port, upstream_port, nginx_port = free_port(), free_port(), free_port()

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", upstream_port), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()

    env = dict(os.environ, JWTD_ADDR=f"127.0.0.1:{jwtd_port}", JWTD_DATABASE_URL=f"sqlite://{work}/jwtd.db",
               JWTD_SIGNING_KEY="nginx-check-signing-key-0123456789abcdef", JWTD_SIGNUP_RATE="off")
    jwtd = subprocess.Popen([jwtd_bin, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=open(f"{work}/jwtd.log", "w"))

    snippet = readme_snippet()
    if "127.0.0.1:8000" not in snippet or "127.0.0.1:9000" not in snippet:
        sys.exit("the README snippet no longer names 127.0.0.1:8000 (jwtd) and 127.0.0.1:9000 (the service)")
    snippet = snippet.replace("127.0.0.1:8000", f"127.0.0.1:{jwtd_port}").replace("127.0.0.1:9000", f"127.0.0.1:{upstream_port}")
    conf = f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{nginx_port};
{snippet}
    }}
}}
"""
    with open(f"{work}/nginx.conf", "w", encoding="utf-8") as f:
        f.write(conf)
    nginx = subprocess.Popen(["nginx", "-p", work, "-c", f"{work}/nginx.conf"], stderr=subprocess.PIPE)
    try:
        wait_for(jwtd_port, "jwtd")
        wait_for(nginx_port, "nginx")

        status, body = call(jwtd_port, "POST", "/api/auth/signup/", {"username": "ada", "password": "correct horse battery"})
        if status != 201:
            sys.exit(f"sign-up: {status} {body!r}")
        signed_up = json.loads(body)
        user_id, access = signed_up["user"]["id"], signed_up["access"]

        status, body = call(nginx_port, "GET", "/app/hello", headers={"Authorization": f"Bearer {access}", "X-Auth-User-Id": "999"})
        if (status, body) != (200, b"hello from upstream"):
            sys.exit(f"a good token through nginx: {status} {body!r}")
        seen = {k.lower(): v for k, v in Upstream.seen[-1].items()}
        if seen.get("x-auth-user-id") != str(user_id):
            sys.exit(f"the upstream saw X-Auth-User-Id {seen.get('x-auth-user-id')!r}, not {user_id}")
        claims = json.loads(base64.urlsafe_b64decode(seen["x-auth-claims"] + "=" * (-len(seen["x-auth-claims"]) % 4)))
        if claims.get("user_id") != user_id or claims.get("token_type") != "access":
            sys.exit(f"the upstream saw claims {claims}")
        print(f"a good token: 200, the upstream saw X-Auth-User-Id {user_id} (not the client's 999) and the claims")
        # Any method of the client's: nginx's subrequest to the check is a GET whatever it is.
        for method in ("POST", "PUT", "DELETE", "HEAD"):
            status, _ = call(nginx_port, method, "/app/hello", headers={"Authorization": f"Bearer {access}"})
            if status != 200:
                sys.exit(f"a good token on a {method} through nginx: {status}")
        print("POST, PUT, DELETE, HEAD with a good token: 200")

        before = len(Upstream.seen)
        status, _ = call(nginx_port, "GET", "/app/hello", headers={"X-Auth-User-Id": str(user_id)})
        if status != 401:
            sys.exit(f"no token through nginx: {status}")
        status, _ = call(nginx_port, "GET", "/app/hello", headers={"Authorization": "Bearer not.a.token"})
        if status != 401:
            sys.exit(f"a bad token through nginx: {status}")

        status, body = call(jwtd_port, "POST", "/api/auth/logout-all/", headers={"Authorization": f"Bearer {access}"})
        if status != 200:
            sys.exit(f"logout-all: {status} {body!r}")
        status, _ = call(nginx_port, "GET", "/app/hello", headers={"Authorization": f"Bearer {access}"})
        if status != 401:
            sys.exit(f"a token revoked by logout-all through nginx: {status}")
        if len(Upstream.seen) != before:
            sys.exit("a refused request reached the upstream")
        print("no token, a bad token, a token revoked by logout-all: 401, the upstream never asked")
    finally:
        nginx.terminate()
        jwtd.terminate()
        nginx.wait(10)
        jwtd.wait(10)
        upstream.shutdown()


if __name__ == "__main__":
    main()
