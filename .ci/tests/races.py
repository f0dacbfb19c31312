"""Revocation and throttling races against the release binary (SPEC 4 "Revocation is exact in time",
SPEC 5 LOGIN_RATE). Each check prints what it measured and fails if any token outlives what should
have ended it, or any throttle lets more attempts through than its rate.

    JWTD_BIN=target/release/jwtd python3 .ci/tests/races.py [--rounds N]

1. sign-ins racing a password change: four threads sign in with the old password in a loop while
   the password changes; afterwards every refresh and access token obtained with the old password
   must be refused;
2. concurrent wrong passwords: 120 at once against one account with LOGIN_RATE=10/min: at most 10
   are checked (401), the rest throttled (429);
3. same-second logout-all: sign in, log out everywhere, sign in again at once, in a loop: the first
   pair must be refused, the second must work."""
import argparse
import os
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("SHARED") or os.path.join(HERE, "..", "..", "..", "shared")
sys.path.insert(0, os.path.join(SHARED, "harness"))
import servers  # noqa: E402

TIMEOUT = 20


def signup(srv, session, password):
    name = "race-" + uuid.uuid4().hex[:12]
    r = session.post(srv.url("/api/auth/signup/"), json={"username": name, "password": password}, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    return name, r.json()


def sign_in(session, srv, name, password):
    return session.post(srv.url("/api/token/"), json={"username": name, "password": password}, timeout=TIMEOUT)


def refresh_ok(session, srv, token):
    return session.post(srv.url("/api/token/refresh/"), json={"refresh": token}, timeout=TIMEOUT).status_code == 200


def me_ok(session, srv, access):
    r = session.get(srv.url("/api/me/"), headers={"Authorization": f"Bearer {access}"}, timeout=TIMEOUT)
    return r.status_code == 200


def signin_vs_password_change(srv, rounds):
    """Returns (pairs obtained with the old password, refresh survivors, access survivors)."""
    total = refresh_alive = access_alive = 0
    for _ in range(rounds):
        s = requests.Session()
        old, new = "old-" + uuid.uuid4().hex, "new-" + uuid.uuid4().hex
        name, got = signup(srv, s, old)
        stop = threading.Event()
        pairs, lock = [], threading.Condition()

        def loop():
            own = requests.Session()
            while not stop.is_set():
                r = sign_in(own, srv, name, old)
                if r.status_code == 200:
                    with lock:
                        pairs.append(r.json())
                        lock.notify_all()
                elif r.status_code == 401:
                    return  # the change has committed: the old password no longer works

        threads = [threading.Thread(target=loop) for _ in range(4)]
        for t in threads:
            t.start()
        with lock:  # let the loops get going
            lock.wait_for(lambda: len(pairs) >= 4)
        r = s.post(srv.url("/api/auth/password/"), json={"old_password": old, "new_password": new},
                   headers={"Authorization": f"Bearer {got['access']}"}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        stop.set()
        for t in threads:
            t.join()
        total += len(pairs)
        refresh_alive += sum(refresh_ok(s, srv, p["refresh"]) for p in pairs)
        access_alive += sum(me_ok(s, srv, p["access"]) for p in pairs)
        assert sign_in(s, srv, name, new).status_code == 200
    return total, refresh_alive, access_alive


def concurrent_wrong_passwords(srv, attempts=120):
    s = requests.Session()
    name, _ = signup(srv, s, "right-" + uuid.uuid4().hex)

    def attempt(_):
        return sign_in(requests.Session(), srv, name, "wrong-" + uuid.uuid4().hex).status_code

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        codes = list(pool.map(attempt, range(attempts)))
    return codes.count(401), codes.count(429), len(codes) - codes.count(401) - codes.count(429)


def same_second_logout_all(srv, rounds):
    """Returns (old refresh survivors, old access survivors, new pairs refused)."""
    s = requests.Session()
    password = "pw-" + uuid.uuid4().hex
    name, _ = signup(srv, s, password)
    old_refresh = old_access = new_refused = 0
    for _ in range(rounds):
        first = sign_in(s, srv, name, password).json()
        r = s.post(srv.url("/api/auth/logout-all/"), headers={"Authorization": f"Bearer {first['access']}"},
                   timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        second = sign_in(s, srv, name, password).json()
        old_access += me_ok(s, srv, first["access"])
        old_refresh += refresh_ok(s, srv, first["refresh"])
        new_refused += (not me_ok(s, srv, second["access"])) + (not refresh_ok(s, srv, second["refresh"]))
    return old_refresh, old_access, new_refused


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    failed = False
    with servers.start("jwtd", {"LOGIN_RATE": "off"}) as srv:
        total, refresh_alive, access_alive = signin_vs_password_change(srv, args.rounds)
        print(f"sign-in vs password change: {total} pairs obtained with the old password in {args.rounds} rounds; "
              f"{refresh_alive} refresh and {access_alive} access tokens still worked afterwards")
        failed |= refresh_alive + access_alive > 0
        rounds = args.rounds * 10
        old_refresh, old_access, new_refused = same_second_logout_all(srv, rounds)
        print(f"same-second logout-all, {rounds} rounds: {old_refresh} refresh and {old_access} access tokens "
              f"survived it; {new_refused} tokens of the sign-in right after were refused")
        failed |= old_refresh + old_access + new_refused > 0
    with servers.start("jwtd", {"LOGIN_RATE": "10/min"}) as srv:
        checked, throttled, other = concurrent_wrong_passwords(srv)
        print(f"120 concurrent wrong passwords at LOGIN_RATE=10/min: {checked} checked (401), "
              f"{throttled} throttled (429), {other} other")
        failed |= checked > 10 or other > 0
    if failed:
        print("FAILED: a token outlived its revocation or a throttle let too many through")
        sys.exit(1)
    print("races: ok")


if __name__ == "__main__":
    main()
