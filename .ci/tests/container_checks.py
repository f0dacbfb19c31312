"""Checks of the jwtd container from the host (.ci/steps/70-container.sh); standard library only.

  api BASE                  sign up, refresh, /api/me/ with the new access token; prints the tokens as JSON
  after-restart BASE FILE   after a restart on the same volume: the old access token still passes /api/me/
                            (the signing key was kept) and the user signs in again (the user was kept)
  sign-in BASE USER PASSWORD
                            the pair of POST /api/token/ answers 200
  drain BASE PROBE... -- CMD...
                            sign-ins whose requests began before CMD (podman stop) and whose bodies end
                            after PROBE's output (podman logs) says jwtd stopped accepting: each must
                            answer 200, CMD must succeed, and the port must be closed afterwards
"""

import http.client
import json
import socket
import subprocess
import sys
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


def logs(probe):
    result = subprocess.run(probe, capture_output=True, text=True)
    return result.stdout + result.stderr


def drain(base, probe, command, count=8):
    """Requests that began before SIGTERM and end after it: each sends its headers and half its body,
    then the stop runs; once jwtd logs that it stopped accepting, the rest of each body goes out."""
    url = urllib.parse.urlsplit(base)
    body = json.dumps({"username": USERNAME, "password": PASSWORD}).encode()
    head = (
        f"POST /api/token/ HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    half = len(body) // 2
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((url.hostname, url.port), timeout=30)
        sock.sendall(head + body[:half])
        sockets.append(sock)
    time.sleep(0.2)
    stop = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while "stopped accepting" not in logs(probe):
        if time.monotonic() > deadline:
            stop.kill()
            sys.exit("jwtd did not log 'stopped accepting' within 15 s of the stop")
        time.sleep(0.1)
    statuses = []
    for sock in sockets:
        try:
            sock.sendall(body[half:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            statuses.append(answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else repr(answer[:60]))
        except OSError as e:
            statuses.append(repr(e))
        finally:
            sock.close()
    code = stop.wait(timeout=30)
    print(f"{count} sign-ins begun before SIGTERM, finished after jwtd stopped accepting: {statuses}")
    if any(status != "200" for status in statuses) or code != 0:
        sys.exit(f"expected 200 for each and `{' '.join(command[-2:])}` to succeed (exit {code})")
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
        split = rest.index("--")
        drain(base, rest[:split], rest[split + 1 :])
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
