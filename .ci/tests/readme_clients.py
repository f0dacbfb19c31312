"""Runs README.md's client snippets (Python `requests`, and `fetch` under Node) against a jwtd
binary with 2-second access tokens: each signs in, calls /api/me/, waits for the access token to
expire, calls again (a 401, a refresh, a retry), and must end with a 200 and one more refresh in
jwtd's metrics. Usage: readme_clients.py JWTD_BIN"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def snippets(lang):
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("## Clients", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def refreshes(api):
    text = requests.get(f"{api}/metrics").text
    line = next(l for l in text.splitlines() if l.startswith('jwtd_tokens_refreshed_total{type="refresh"}'))
    return float(line.split()[-1])


def main(jwtd_bin):
    tmp = tempfile.mkdtemp()
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ["PATH"],
        "JWTD_ADDR": f"127.0.0.1:{port}",
        "JWTD_DATABASE_URL": f"sqlite://{tmp}/jwtd.db",
        # exp counts from iat's whole second, so a token lives between 1 and 2 s: at 1 s one issued
        # late in a second could expire before the retry that carries it arrives.
        "JWTD_ACCESS_TOKEN_LIFETIME": "2s",
        "JWTD_ROTATE_REFRESH_TOKENS": "true",
    }
    server = subprocess.Popen([jwtd_bin, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                requests.get(f"{api}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        user = {"username": "ada", "password": "correct horse battery"}
        assert requests.post(f"{api}/api/auth/signup/", json=user).status_code == 201

        (python,) = snippets("python")
        scope = {}
        before = refreshes(api)
        exec(python.replace('"http://localhost:8000"', repr(api)), scope)
        session = scope["session"]
        time.sleep(2.1)
        me = session.get(f"{api}/api/me/")
        assert me.status_code == 200, me.text
        assert refreshes(api) == before + 1, "the Python client refreshed once"
        print("ok: README's Python requests client signs in, refreshes on 401, retries")

        fetch = snippets("js")[0]
        driver = fetch.replace('"http://localhost:8000"', repr(api)) + """
await signIn("ada", "correct horse battery");
if ((await api("/api/me/")).status !== 200) throw new Error("first call");
await new Promise((done) => setTimeout(done, 2100));
const [a, b] = await Promise.all([api("/api/me/"), api("/api/me/")]);
if (a.status !== 200 || b.status !== 200) throw new Error(`after expiry: ${a.status} ${b.status}`);
console.log("ok: README's fetch client signs in, refreshes once for two 401s, retries");
"""
        path = os.path.join(tmp, "fetch_client.mjs")
        open(path, "w").write(driver)
        before = refreshes(api)
        subprocess.run(["node", path], check=True)
        assert refreshes(api) == before + 1, "the fetch client refreshed once for both requests"
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main(sys.argv[1])
