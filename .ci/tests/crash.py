"""Crash consistency: with rotation and blacklisting on, clients refresh and log out continuously
while the server is killed with SIGKILL at random points, 20 times, restarting on the same SQLite
database each time. Afterwards no blacklisted or rotated-away token is accepted, every token that
was answered 200 and not since rotated or blacklisted still works, and the database passes
SQLite's integrity check.

A request in flight at the moment of a kill has an unknown outcome: its session is dropped from
both checks (it would be wrong to call its token either live or dead)."""
import os
import random
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import uuid

import requests

sys.path.insert(0, os.path.join(os.environ["SHARED"], "harness"))
import servers  # noqa: E402

KILLS = int(os.environ.get("CRASH_KILLS", "20"))
WORKERS = 6
SETTINGS = {"ROTATE_REFRESH_TOKENS": True, "BLACKLIST_AFTER_ROTATION": True, "ROTATION_GRACE_PERIOD": 0,
            "LOGIN_RATE": "off", "SIGNUP_RATE": "off"}

lock = threading.Lock()
dead = set()       # rotated away or blacklisted, confirmed by a 200
live = {}          # session -> its current refresh token, confirmed by a 200
base = {"url": None}
up = threading.Event()
stop = threading.Event()
ops = {"refresh": 0, "logout": 0, "uncertain": 0}


def worker(n):
    session = requests.Session()
    username, password = f"crash{n}_{uuid.uuid4().hex[:8]}", "crash-password-123"
    key = None
    while not stop.is_set():
        up.wait()
        url = base["url"]
        try:
            if key is None:
                r = session.post(url + "/api/token/", json={"username": username, "password": password}, timeout=10)
                if r.status_code == 401:
                    r = session.post(url + "/api/auth/signup/", json={"username": username, "password": password},
                                     timeout=10)
                r.raise_for_status()
                key = uuid.uuid4().hex
                with lock:
                    live[key] = r.json()["refresh"]
                continue
            with lock:
                token = live[key]
            if random.random() < 0.1:
                r = session.post(url + "/api/token/blacklist/", json={"refresh": token}, timeout=10)
                assert r.status_code == 200, (r.status_code, r.text)
                with lock:
                    dead.add(token)
                    del live[key]
                    ops["logout"] += 1
                key = None
            else:
                r = session.post(url + "/api/token/refresh/", json={"refresh": token}, timeout=10)
                assert r.status_code == 200, (r.status_code, r.text)
                with lock:
                    dead.add(token)
                    live[key] = r.json()["refresh"]
                    ops["refresh"] += 1
        except (requests.ConnectionError, requests.Timeout):
            # the server died under this request: its outcome is unknown
            with lock:
                live.pop(key, None)
                ops["uncertain"] += 1
            key = None
            time.sleep(0.05)


def main():
    tmp = tempfile.mkdtemp(prefix="jwtd-crash-")
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(WORKERS)]
    for kill in range(KILLS + 1):
        with servers.start("jwtd", SETTINGS, tmp=tmp) as srv:
            base["url"] = srv.base
            up.set()
            if kill == 0:
                for t in threads:
                    t.start()
            time.sleep(random.uniform(0.3, 1.2))
            if kill == KILLS:
                stop.set()  # let in-flight requests finish on a live server
                for t in threads:
                    t.join(30)
                break
            up.clear()
            srv.stop(signal.SIGKILL)
    with lock:
        dead_tokens, live_tokens = set(dead), dict(live)
    print(f"{KILLS} kills; {ops['refresh']} refreshes, {ops['logout']} logouts answered 200, "
          f"{ops['uncertain']} requests cut by a kill; checking {len(dead_tokens)} dead and "
          f"{len(live_tokens)} live tokens")
    with servers.start("jwtd", SETTINGS, tmp=tmp) as srv:
        bad = []
        for token in dead_tokens:
            r = requests.post(srv.url("/api/token/verify/"), json={"token": token}, timeout=10)
            if r.status_code != 401:
                bad.append(("dead token accepted", r.status_code, r.text))
        for token in live_tokens.values():
            r = requests.post(srv.url("/api/token/refresh/"), json={"refresh": token}, timeout=10)
            if r.status_code != 200:
                bad.append(("live token refused", r.status_code, r.text))
        for token in list(dead_tokens)[:50]:  # and refreshing a dead one is refused too
            r = requests.post(srv.url("/api/token/refresh/"), json={"refresh": token}, timeout=10)
            if r.status_code != 401:
                bad.append(("dead token refreshed", r.status_code, r.text))
    db = sqlite3.connect(os.path.join(tmp, "jwtd.db"))
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    db.close()
    print(f"integrity_check: {integrity}")
    if bad or integrity != "ok":
        for b in bad[:20]:
            print("FAIL", b)
        sys.exit(1)
    print("crash consistency: ok")


if __name__ == "__main__":
    main()
