"""Storage faults on SQLite: the disk under the database (a small tmpfs) fills up while jwtd serves.
(A read-only remount is not testable here: Linux refuses it while the server holds the files open
for writing.) Writing endpoints must answer 503 with a JSON `detail`, token verification and
Bearer authentication keep working, nothing panics, and service resumes once the fault ends."""
import os
import subprocess
import sys
import tempfile
import uuid

import requests

sys.path.insert(0, os.path.join(os.environ["SHARED"], "harness"))
import servers  # noqa: E402

SETTINGS = {"ROTATE_REFRESH_TOKENS": True, "ROTATION_GRACE_PERIOD": 0, "LOGIN_RATE": "off", "SIGNUP_RATE": "off"}
failures = []


def check(what, cond, resp=None):
    status = "ok  " if cond else "FAIL"
    extra = f" -> {resp.status_code} {resp.text[:120]}" if resp is not None else ""
    print(f"{status} {what}{extra}")
    if not cond:
        failures.append(what)


def is_503_json(r):
    try:
        return r.status_code == 503 and isinstance(r.json().get("detail"), str)
    except ValueError:
        return False


def signup(srv):
    return requests.post(srv.url("/api/auth/signup/"),
                         json={"username": "u" + uuid.uuid4().hex[:10], "password": "storage-pass-1"}, timeout=10)


def under_fault(srv, fault, access, refresh):
    check(f"{fault}: sign-up answers 503 JSON", is_503_json(r := signup(srv)), r)
    r = requests.post(srv.url("/api/token/refresh/"), json={"refresh": refresh}, timeout=10)
    check(f"{fault}: rotating refresh answers 503 JSON", is_503_json(r), r)
    r = requests.post(srv.url("/api/token/blacklist/"), json={"refresh": refresh}, timeout=10)
    check(f"{fault}: blacklist answers 503 JSON", is_503_json(r), r)
    r = requests.post(srv.url("/api/token/verify/"), json={"token": access}, timeout=10)
    check(f"{fault}: verify of an access token works", r.status_code == 200, r)
    r = requests.get(srv.url("/api/me/"), headers={"Authorization": f"Bearer {access}"}, timeout=10)
    check(f"{fault}: Bearer-authenticated /api/me/ works", r.status_code == 200, r)
    r = requests.get(srv.url("/healthz"), timeout=10)
    check(f"{fault}: healthz answers", r.status_code == 200, r)


def recovered(srv, fault, refresh):
    check(f"after {fault}: sign-up works again", (r := signup(srv)).status_code == 201, r)
    r = requests.post(srv.url("/api/token/refresh/"), json={"refresh": refresh}, timeout=10)
    check(f"after {fault}: refresh works again", r.status_code == 200, r)
    return r.json().get("refresh", refresh) if r.status_code == 200 else refresh


def main():
    disk = tempfile.mkdtemp(prefix="jwtd-disk-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", disk]).returncode != 0:
        print("FAIL cannot mount a tmpfs (needs root)")
        sys.exit(1)
    try:
        settings = {**SETTINGS, "DATABASE_URL": f"sqlite://{disk}/jwtd.db"}
        with servers.start("jwtd", settings) as srv:
            r = signup(srv)
            check("sign-up before any fault", r.status_code == 201, r)
            access, refresh = r.json()["access"], r.json()["refresh"]

            filler = os.path.join(disk, "filler")
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            under_fault(srv, "disk full", access, refresh)
            os.remove(filler)
            recovered(srv, "disk full", refresh)
            log = srv.log()
        check("no panic in the server log", "panicked" not in log)
    finally:
        subprocess.run(["umount", disk])
    if failures:
        sys.exit(1)
    print("storage faults: ok")


if __name__ == "__main__":
    main()
