"""Multi-instance checks of jwtd on PostgreSQL (SPEC section 4; issue "PostgreSQL").

    python .ci/postgres_checks.py race   --runs 10
    python .ci/postgres_checks.py session
    python .ci/postgres_checks.py outage --stop-cmd "pg_ctl ... stop" --start-cmd "pg_ctl ... start"

Needs JWTD_TEST_POSTGRES (a server URL, e.g. postgres://postgres@127.0.0.1:5433/postgres),
JWTD_BIN, and SHARED (the folder holding harness/servers.py). Servers listen on loopback only.

race:   two jwtd processes on one database; 200 concurrent refreshes of one refresh token spread
        over both. Rotation and blacklisting on, grace period off: at most one distinct successor
        is handed out and at most one is accepted afterwards. Grace period on: every answer is 200
        and carries the same successor jti. Both for a token jwtd recorded at sign-up and for one
        it never saw (minted like SimpleJWT would). Every run also checks the database: the
        presented token and at most one successor, nothing else.
session: two jwtd processes on one database; a session revoked on the first (DELETE
        /api/auth/sessions/{id}/) has its access token refused by the second within 1 s of the
        answer (the second's revocation poll runs every 500 ms), its refresh token refused there
        at once, and the caller's own tokens keep working on both.
feed:   two jwtd processes on one database and a service built on jwtd-verify alone (its example
        service, JWTD_VERIFY_SERVICE_BIN) reading the revocation feed of the second one: a logout-all
        on the first is refused by the service within 2 s; the user's next sign-in is accepted.
outage: one jwtd under load; PostgreSQL is stopped for a few seconds and started again. While it
        is down: endpoints that need it answer 503 with a JSON "detail", /readyz answers 503,
        /api/token/verify/ of an access token answers 200, a Bearer token is still judged (a bad
        one 401, a good one reaches the handler, which then needs the database: 503). Never a 500.
        Back up: everything works again within 5 s, without restarting jwtd, and every successor
        a client was handed is in the database (nothing half-written).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import requests

sys.path.insert(0, os.path.join(os.environ["SHARED"], "harness"))
import servers  # noqa: E402

PG = os.environ["JWTD_TEST_POSTGRES"]
PASSWORD = "correct horse battery"
CONCURRENT = 200


def fail(msg):
    print(f"FAILED: {msg}", flush=True)
    sys.exit(1)


def psql(database_url, sql):
    out = subprocess.run(["psql", database_url, "-XAtqc", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def database_of(srv):
    with open(os.path.join(srv.tmp, "postgres-database")) as f:
        name = f.read().strip()
    return PG.rsplit("/", 1)[0] + "/" + name


def sign_up(srv):
    name = "u" + uuid.uuid4().hex[:12]
    r = requests.post(srv.url("/api/auth/signup/"), json={"username": name, "password": PASSWORD}, timeout=30)
    if r.status_code != 201:
        fail(f"sign-up answered {r.status_code}: {r.text}")
    body = r.json()
    return name, body["user"]["id"], body["refresh"], body["access"]


def unseen_refresh_token(user_id, secret):
    """A refresh token as SimpleJWT issues it: jwtd has no row for it."""
    now = int(time.time())
    claims = {"token_type": "refresh", "exp": now + 3600, "iat": now, "jti": uuid.uuid4().hex, "user_id": user_id}
    return jwt.encode(claims, secret, algorithm="HS256")


def jti_of(token):
    return jwt.decode(token, options={"verify_signature": False})["jti"]


def storm(instances, token):
    """CONCURRENT refreshes of `token`, released together, alternating between the instances."""
    barrier = threading.Barrier(CONCURRENT)

    def one(i):
        srv = instances[i % len(instances)]
        session = requests.Session()
        barrier.wait(timeout=60)
        r = session.post(srv.url("/api/token/refresh/"), json={"refresh": token}, timeout=60)
        try:
            body = r.json()
        except ValueError:
            body = {"raw": r.text}
        return r.status_code, body

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        return list(pool.map(one, range(CONCURRENT)))


def race_once(instances, grace, token, label):
    answers = storm(instances, token)
    statuses = {}
    for status, _ in answers:
        statuses[status] = statuses.get(status, 0) + 1
    successors = {jti_of(b["refresh"]): b["refresh"] for s, b in answers if s == 200 and "refresh" in b}
    if any(s >= 500 for s, _ in answers):
        fail(f"{label}: server errors {statuses}: {[b for s, b in answers if s >= 500][:3]}")
    if grace:
        if statuses != {200: CONCURRENT} or len(successors) != 1:
            fail(f"{label}: expected {CONCURRENT} answers 200 with one successor, got {statuses}, "
                 f"{len(successors)} distinct successors")
    elif len(successors) > 1:
        fail(f"{label}: {len(successors)} distinct successors handed out")
    accepted = 0
    for i, successor in enumerate(successors.values()):
        r = requests.post(instances[i % 2].url("/api/token/refresh/"), json={"refresh": successor}, timeout=30)
        accepted += r.status_code == 200
    if accepted > 1:
        fail(f"{label}: {accepted} successors accepted afterwards")
    rows = int(psql(database_of(instances[0]), f"SELECT count(*) FROM refresh_tokens WHERE jti = '{jti_of(token)}' "
                    f"OR family = (SELECT family FROM refresh_tokens WHERE jti = '{jti_of(token)}')"))
    # the presented token, its one successor, and the successor's own successor if it was refreshed
    if rows > 1 + len(successors) + accepted:
        fail(f"{label}: {rows} rows in the token's family")
    return statuses, len(successors), accepted


def race(args):
    for grace in (False, True):
        settings = {"ROTATE_REFRESH_TOKENS": True, "BLACKLIST_AFTER_ROTATION": True,
                    "ROTATION_GRACE_PERIOD": 10 if grace else 0, "LOGIN_RATE": "off", "SIGNUP_RATE": "off"}
        shared = tempfile.mkdtemp(prefix="jwtd-race-")
        with servers.start("jwtd", settings, tmp=shared) as a, servers.start("jwtd", settings, tmp=shared) as b:
            if database_of(a) != database_of(b):
                fail("the two instances do not share one database")
            mode = "grace 10s" if grace else "grace off"
            for run in range(1, args.runs + 1):
                started = time.time()
                _, user_id, refresh, _ = sign_up(a if run % 2 else b)
                recorded = race_once([a, b], grace, refresh, f"{mode}, run {run}, recorded token")
                unseen = race_once([b, a], grace, unseen_refresh_token(user_id, a.secret),
                                   f"{mode}, run {run}, never-seen token")
                print(f"race {mode} run {run}/{args.runs}: recorded token {recorded[0]}, "
                      f"successors {recorded[1]}, accepted after {recorded[2]}; never-seen token {unseen[0]}, "
                      f"successors {unseen[1]}, accepted after {unseen[2]} ({time.time() - started:.1f}s)",
                      flush=True)
    print(f"race: {args.runs} runs with the grace period off and {args.runs} with it on passed, each racing "
          f"{CONCURRENT} concurrent refreshes over 2 instances for a recorded and a never-seen token")


def session(args):
    settings = {"LOGIN_RATE": "off", "SIGNUP_RATE": "off"}
    shared = tempfile.mkdtemp(prefix="jwtd-session-")
    with servers.start("jwtd", settings, tmp=shared) as a, servers.start("jwtd", settings, tmp=shared) as b:
        if database_of(a) != database_of(b):
            fail("the two instances do not share one database")
        name, _, _, access = sign_up(a)
        r = requests.post(a.url("/api/token/"), json={"username": name, "password": PASSWORD},
                          headers={"User-Agent": "phone"}, timeout=30)
        if r.status_code != 200:
            fail(f"sign-in answered {r.status_code}: {r.text}")
        phone = r.json()
        me = lambda srv, token: requests.get(srv.url("/api/me/"), headers={"Authorization": f"Bearer {token}"},
                                             timeout=30).status_code
        if me(b, phone["access"]) != 200:
            fail("the second instance refuses the new session's access token")
        sid = jti_of(phone["refresh"])[:16]
        r = requests.delete(a.url(f"/api/auth/sessions/{sid}/"), headers={"Authorization": f"Bearer {access}"},
                            timeout=30)
        revoked_at = time.monotonic()
        if r.status_code != 200 or r.json() != {}:
            fail(f"DELETE of the session answered {r.status_code}: {r.text}")
        while me(b, phone["access"]) != 401:
            if time.monotonic() - revoked_at > 1.0:
                fail("the second instance still accepts the revoked session's access token after 1 s")
            time.sleep(0.02)
        took = time.monotonic() - revoked_at
        r = requests.post(b.url("/api/token/refresh/"), json={"refresh": phone["refresh"]}, timeout=30)
        if r.status_code != 401 or r.json().get("detail") != "Token is blacklisted":
            fail(f"the revoked session's refresh answered {r.status_code}: {r.text}")
        if me(a, access) != 200 or me(b, access) != 200:
            fail("the caller's own access token is refused")
    print(f"session: a session revoked on one instance was refused by the other after {took:.2f} s")


class Load:
    """Background clients: each keeps its own session rotating, verifies its access token, and
    reads /api/me/, recording every answer with its time."""

    def __init__(self, srv, clients=4):
        self.srv, self.stop_flag, self.lock = srv, threading.Event(), threading.Lock()
        self.answers = []  # (time, kind, status, body)
        self.handed_out = set()  # successor jtis a client received
        self.sessions = [sign_up(srv) for _ in range(clients)]
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(clients)]

    def record(self, kind, r):
        try:
            body = r.json()
        except ValueError:
            body = None
        with self.lock:
            self.answers.append((time.time(), kind, r.status_code, body, r.headers.get("content-type", "")))
        return body

    def run(self, i):
        _, _, refresh, access = self.sessions[i]
        http = requests.Session()
        while not self.stop_flag.is_set():
            r = http.post(self.srv.url("/api/token/refresh/"), json={"refresh": refresh}, timeout=30)
            body = self.record("refresh", r)
            if r.status_code == 200:
                refresh, access = body["refresh"], body["access"]
                with self.lock:
                    self.handed_out.add(jti_of(refresh))
            self.record("verify", http.post(self.srv.url("/api/token/verify/"), json={"token": access}, timeout=30))
            self.record("me", http.get(self.srv.url("/api/me/"), headers={"Authorization": f"Bearer {access}"},
                                       timeout=30))
            self.record("readyz", http.get(self.srv.url("/readyz"), timeout=30))
            time.sleep(0.02)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)

    def between(self, start, end):
        with self.lock:
            return [a for a in self.answers if start <= a[0] <= end]


def outage(args):
    settings = {"ROTATE_REFRESH_TOKENS": True, "ROTATION_GRACE_PERIOD": 30, "LOGIN_RATE": "off", "SIGNUP_RATE": "off"}
    with servers.start("jwtd", settings) as srv:
        _, _, _, access = sign_up(srv)
        with Load(srv) as load:
            time.sleep(1.5)
            before = load.between(0, time.time())
            if not any(k == "refresh" and s == 200 for _, k, s, _, _ in before):
                fail(f"no successful refresh before the outage: {before[:5]}")
            subprocess.run(args.stop_cmd, shell=True, check=True, capture_output=True)
            down_at = time.time()
            print("outage: PostgreSQL stopped", flush=True)
            time.sleep(0.5)  # answers racing the stop itself are not judged
            probes_start = time.time()
            # Direct probes while down.
            bad = requests.get(srv.url("/api/me/"), headers={"Authorization": "Bearer not.a.token"}, timeout=30)
            me = requests.get(srv.url("/api/me/"), headers={"Authorization": f"Bearer {access}"}, timeout=30)
            verify = requests.post(srv.url("/api/token/verify/"), json={"token": access}, timeout=30)
            signin = requests.post(srv.url("/api/token/"), json={"username": "nobody", "password": PASSWORD},
                                   timeout=30)
            ready = requests.get(srv.url("/readyz"), timeout=30)
            health = requests.get(srv.url("/healthz"), timeout=30)
            time.sleep(max(0.0, args.down_secs - (time.time() - down_at)))
            down_answers = load.between(probes_start, time.time())
            subprocess.run(args.start_cmd, shell=True, check=True, capture_output=True)
            up_at = time.time()
            print(f"outage: PostgreSQL down for {up_at - down_at:.1f}s, accepting connections again", flush=True)
            recovered_at = None
            while time.time() - up_at < 10:
                ok_ready = requests.get(srv.url("/readyz"), timeout=30).status_code == 200
                ok_signin = requests.post(srv.url("/api/token/"), json={"username": "nobody", "password": "x" * 8},
                                          timeout=30).status_code == 401
                if ok_ready and ok_signin:
                    recovered_at = time.time()
                    break
                time.sleep(0.05)
            time.sleep(1.5)
        # Answers completing just after the probe may have been sent before it: judge from 0.5 s on.
        after = load.between((recovered_at or time.time()) + 0.5, time.time())

        def is_json_detail(status, body, ctype, code):
            return status == code and ctype.startswith("application/json") and isinstance(body, dict) \
                and isinstance(body.get("detail"), str) and body["detail"]

        checks = [
            ("a bad Bearer token is refused without the database (401)", bad.status_code == 401),
            ("a good Bearer token passes authentication; /api/me/ then needs the database (503 JSON)",
             is_json_detail(me.status_code, me.json(), me.headers.get("content-type", ""), 503)),
            ("/api/token/verify/ of an access token answers 200 {}", verify.status_code == 200 and verify.json() == {}),
            ("sign-in answers 503 JSON", is_json_detail(signin.status_code, signin.json(),
                                                        signin.headers.get("content-type", ""), 503)),
            ("/readyz answers 503", ready.status_code == 503),
            ("/healthz answers 200", health.status_code == 200),
        ]
        by_kind = {}
        for _, kind, status, body, ctype in down_answers:
            by_kind.setdefault(kind, {}).setdefault(status, 0)
            by_kind[kind][status] += 1
        checks += [
            ("under load while down: refreshes answer 503 JSON",
             all(is_json_detail(s, b, c, 503) for _, k, s, b, c in down_answers if k == "refresh")
             and by_kind.get("refresh")),
            ("under load while down: verify of access tokens answers 200",
             all(s == 200 for _, k, s, _, _ in down_answers if k == "verify") and by_kind.get("verify")),
            ("under load while down: /api/me/ answers 503 JSON",
             all(is_json_detail(s, b, c, 503) for _, k, s, b, c in down_answers if k == "me")),
            ("under load while down: /readyz answers 503",
             all(s == 503 for _, k, s, _, _ in down_answers if k == "readyz")),
            ("never a 500 (or any 5xx but 503)", all(s < 500 or s == 503 for _, _, s, _, _ in load.answers)),
            ("recovered within 5 s of PostgreSQL's return", recovered_at is not None and recovered_at - up_at <= 5),
            ("after recovery the load's refreshes succeed again",
             any(k == "refresh" and s == 200 for _, k, s, _, _ in after)
             and all(s == 200 for _, k, s, _, _ in after if k in ("refresh", "verify", "me", "readyz"))),
        ]
        url = database_of(srv)
        handed_out = sorted(load.handed_out)
        listed = ",".join(f"'{j}'" for j in handed_out) or "''"
        stored = set(psql(url, f"SELECT jti FROM refresh_tokens WHERE jti IN ({listed})").split())
        missing = [j for j in handed_out if j not in stored]
        dangling = psql(url, "SELECT count(*) FROM refresh_tokens a WHERE replaced_by IS NOT NULL AND NOT EXISTS "
                             "(SELECT 1 FROM refresh_tokens b WHERE b.jti = a.replaced_by)")
        checks += [
            ("every successor handed to a client is in the database", not missing),
            ("no rotated row points at a missing successor", dangling == "0"),
        ]
        print(f"outage: answers while down by kind and status: {json.dumps(by_kind, sort_keys=True)}")
        if recovered_at is not None:
            print(f"outage: recovered {recovered_at - up_at:.2f}s after PostgreSQL was back "
                  f"({len(load.answers)} answers in all, {len(load.handed_out)} successors handed out)")
        failed = [name for name, ok in checks if not ok]
        for name, ok in checks:
            print(f"  {'ok  ' if ok else 'FAIL'} {name}")
        if failed:
            print(srv.log()[-3000:])
            fail(f"outage: {len(failed)} checks failed")
        print(f"outage: {len(checks)} passed, 0 failed")


SERVICE_TOKEN = "feed-check-service-token-0123456789abcdef"


def feed(args):
    settings = {"SERVICE_TOKENS": SERVICE_TOKEN, "LOGIN_RATE": "off", "SIGNUP_RATE": "off"}
    shared = tempfile.mkdtemp(prefix="jwtd-feed-")
    with servers.start("jwtd", settings, tmp=shared) as a, servers.start("jwtd", settings, tmp=shared) as b:
        if database_of(a) != database_of(b):
            fail("the two instances do not share one database")
        port = servers.free_port()
        env = dict(os.environ, JWTD_SIGNING_KEY=a.secret, JWTD_URL=b.base, JWTD_SERVICE_TOKEN=SERVICE_TOKEN,
                   ADDR=f"127.0.0.1:{port}")
        service = subprocess.Popen([os.environ["JWTD_VERIFY_SERVICE_BIN"]], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.time() + 30
            while True:
                try:
                    requests.get(base + "/api/hello/", timeout=1)
                    break
                except requests.ConnectionError:
                    if time.time() > deadline or service.poll() is not None:
                        fail("the jwtd-verify service did not start")
                    time.sleep(0.05)
            name, user_id, _, access = sign_up(a)
            me = requests.get(base + "/api/me/", headers={"Authorization": f"Bearer {access}"}, timeout=5)
            if me.status_code != 200:
                fail(f"the service refused a fresh token: {me.status_code} {me.text}")
            r = requests.post(a.url("/api/auth/logout-all/"), headers={"Authorization": f"Bearer {access}"}, timeout=30)
            if r.status_code != 200:
                fail(f"logout-all answered {r.status_code}: {r.text}")
            done = time.time()
            while True:
                me = requests.get(base + "/api/me/", headers={"Authorization": f"Bearer {access}"}, timeout=5)
                waited = time.time() - done
                if me.status_code == 401:
                    break
                if waited > 2.0:
                    fail(f"the service still accepted the token {waited:.2f}s after logout-all on the other instance")
                time.sleep(0.05)
            if me.json()["messages"][0]["message"] != "Token is blacklisted":
                fail(f"the refusal is not SimpleJWT's: {me.text}")
            r = requests.post(b.url("/api/token/"), json={"username": name, "password": PASSWORD}, timeout=30)
            again = requests.get(base + "/api/me/", headers={"Authorization": f"Bearer {r.json()['access']}"}, timeout=5)
            if again.status_code != 200:
                fail(f"a sign-in after the logout-all is refused by the service: {again.status_code} {again.text}")
            print(f"feed: logout-all of user {user_id} on instance A refused by a jwtd-verify service reading "
                  f"instance B's feed after {waited:.2f}s (limit 2 s); the next sign-in is accepted")
        finally:
            service.terminate()
            service.wait(10)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("race")
    r.add_argument("--runs", type=int, default=10)
    sub.add_parser("session")
    sub.add_parser("feed")
    o = sub.add_parser("outage")
    o.add_argument("--stop-cmd", required=True)
    o.add_argument("--start-cmd", required=True)
    o.add_argument("--down-secs", type=float, default=3.0)
    args = parser.parse_args()
    {"race": race, "session": session, "feed": feed, "outage": outage}[args.command](args)


if __name__ == "__main__":
    main()
