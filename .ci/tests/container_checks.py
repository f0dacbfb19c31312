"""Checks of the jwtd container from the host (.ci/steps/70-container.sh); standard library only.

  api BASE                  sign up, refresh, /api/me/ with the new access token; prints the tokens as JSON
  after-restart BASE FILE   after a restart on the same volume: the old access token still passes /api/me/
                            (the signing key was kept) and the user signs in again (the user was kept)
  sign-in BASE USER PASSWORD
                            the pair of POST /api/token/ answers 200
  drain BASE -- CMD...      sign-ins in flight while CMD (podman stop) runs: every one must answer 200,
                            some of them after CMD began, and the port must be closed afterwards
"""

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.parse

USERNAME = "container-ci"
PASSWORD = "container-ci-password-0123"


def call(base, method, path, body=None, token=None, timeout=30):
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        connection.close()


def expect(status, body, wanted, what):
    if status != wanted:
        sys.exit(f"{what}: expected {wanted}, got {status} {body}")
    return body


def api(base):
    credentials = {"username": USERNAME, "password": PASSWORD}
    pair = expect(*call(base, "POST", "/api/auth/signup/", credentials), 201, "sign-up")
    refreshed = expect(*call(base, "POST", "/api/token/refresh/", {"refresh": pair["refresh"]}), 200, "refresh")
    me = expect(*call(base, "GET", "/api/me/", token=refreshed["access"]), 200, "/api/me/")
    if me.get("username") != USERNAME:
        sys.exit(f"/api/me/ names {me.get('username')!r}, not {USERNAME!r}")
    print(json.dumps({"access": refreshed["access"], "refresh": pair["refresh"]}))
    print("sign-up 201, refresh 200, /api/me/ 200 with the refreshed access token", file=sys.stderr)


def after_restart(base, tokens_file):
    with open(tokens_file, encoding="utf-8") as f:
        tokens = json.load(f)
    expect(*call(base, "GET", "/api/me/", token=tokens["access"]), 200, "/api/me/ with the token from before the restart")
    credentials = {"username": USERNAME, "password": PASSWORD}
    expect(*call(base, "POST", "/api/token/", credentials), 200, "sign-in after the restart")
    print("after the restart: the old access token passes /api/me/, the user signs in")


def sign_in(base, username, password):
    expect(*call(base, "POST", "/api/token/", {"username": username, "password": password}), 200, f"sign-in of {username}")
    print(f"{username} signs in")


def drain(base, command, count=48):
    results, finished = [None] * count, [0.0] * count

    def sign_in(i):
        try:
            results[i] = call(base, "POST", "/api/token/", {"username": USERNAME, "password": PASSWORD})[0]
        except OSError as e:
            results[i] = repr(e)
        finished[i] = time.monotonic()

    threads = [threading.Thread(target=sign_in, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # every request sent and waiting for its hash; the pool hashes ~2 at a time
    stop_began = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    stop_took = time.monotonic() - stop_began
    for thread in threads:
        thread.join()
    late = sum(1 for t in finished if t > stop_began)
    print(f"{count} sign-ins: {late} answered after `{' '.join(command[-2:])}` began (it took {stop_took:.2f} s)")
    failed = [r for r in results if r != 200]
    if failed:
        sys.exit(f"sign-ins in flight at SIGTERM did not all answer 200: {failed}")
    if late == 0:
        sys.exit("every sign-in had answered before the stop began: the drain was not exercised")
    try:
        call(base, "GET", "/healthz", timeout=2)
    except OSError:
        return
    sys.exit("the port still answers after podman stop")


def main():
    mode, base, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == "api":
        api(base)
    elif mode == "after-restart":
        after_restart(base, rest[0])
    elif mode == "sign-in":
        sign_in(base, *rest[:2])
    elif mode == "drain":
        drain(base, rest[1:] if rest[:1] == ["--"] else rest)
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
