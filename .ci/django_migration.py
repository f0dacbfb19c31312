"""Migration from Django, end to end, against the real SimpleJWT reference server.

Users sign up at the reference (Django + SimpleJWT), some get their password hashed by Django's
other hashers, they obtain tokens, one logs out (blacklist). Then `jwtd import-django` copies
the reference's SQLite database into a fresh jwtd database, jwtd starts on it with the same
SIGNING_KEY (Django's SECRET_KEY), and:
  - every user signs in at jwtd with the old password, and the stored hash becomes argon2id;
  - refresh tokens Django issued refresh at jwtd (rotation off, then on), the blacklisted one
    answers "Token is blacklisted";
  - jwtd's access tokens authenticate at the reference's /api/me/, Django's at jwtd's;
  - a second import reports 0 new; a database without Django's tables is refused.

Environment: SHARED (the shared folder), JWTD_BIN (the jwtd binary). Run it with the reference
virtualenv's python, with argon2-cffi and bcrypt installed there (30-django.sh does this).
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import requests

sys.path.insert(0, os.path.join(os.environ["SHARED"], "harness"))
import servers  # noqa: E402

JWTD = os.environ["JWTD_BIN"]
REFERENCE = os.path.join(os.environ["SHARED"], "reference", "simplejwt", "project")
SECRET = "django-insecure-migration-test-0123456789abcdefghijklmnop"
BLACKLISTED = {"detail": "Token is blacklisted", "code": "token_not_valid"}

# username -> (password, the Django hasher its password ends up hashed with)
USERS = {
    "ada": ("ada-lovelace-1815", "pbkdf2_sha256"),  # as signed up: Django's default hasher
    "bob": ("bob's password, ünïcode ✓", "pbkdf2_sha256"),
    "carol": ("carol-argon2-password", "argon2"),
    "dave": ("dave-bcrypt-password", "bcrypt_sha256"),
    "erin": ("erin-pbkdf2-sha1-password", "pbkdf2_sha1"),
}
LOGGED_OUT = "bob"

failures = []


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what)
    if not condition:
        failures.append(what)


def post(base, path, body, **kw):
    return requests.post(base + path, json=body, timeout=60, **kw)


def rehash_in_django(ref_db, username, password, hasher):
    """Sets a password with one of Django's hashers, through Django itself (manage.py shell)."""
    code = (
        "import os\n"
        "from django.contrib.auth.hashers import make_password\n"
        "from django.contrib.auth.models import User\n"
        "u = User.objects.get(username=os.environ['MIGRATION_USER'])\n"
        "u.password = make_password(os.environ['MIGRATION_PASSWORD'], hasher=os.environ['MIGRATION_HASHER'])\n"
        "u.save(update_fields=['password'])\n"
    )
    env = dict(os.environ, REF_DB=ref_db, JWTD_SIGNING_KEY=SECRET, MIGRATION_USER=username,
               MIGRATION_PASSWORD=password, MIGRATION_HASHER=hasher)
    subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", code], cwd=REFERENCE, env=env, check=True)


def jwtd(*args):
    return subprocess.run([JWTD, *args], capture_output=True, text=True, timeout=300)


def stored_hash(db, user_id):
    with sqlite3.connect(db) as c:
        return c.execute("SELECT password FROM users WHERE id = ?", (user_id,)).fetchone()[0]


def main():
    tmp = tempfile.mkdtemp(prefix="jwtd-django-")
    ref_dir, jwtd_dir = os.path.join(tmp, "ref"), os.path.join(tmp, "jwtd")
    os.makedirs(ref_dir)
    os.makedirs(jwtd_dir)
    ref_db, jwtd_db = os.path.join(ref_dir, "ref.sqlite3"), os.path.join(jwtd_dir, "jwtd.db")
    settings = {"SIGNING_KEY": SECRET}
    try:
        with servers.start("simplejwt", settings, tmp=ref_dir) as ref:
            # 1. Life at Django.
            ids, refresh, access = {}, {}, {}
            for name, (password, _) in USERS.items():
                r = post(ref.base, "/api/auth/signup/", {"username": name, "password": password})
                assert r.status_code == 201, (name, r.status_code, r.text)
                ids[name] = r.json()["user"]["id"]
            for name, (password, _) in USERS.items():
                r = post(ref.base, "/api/token/", {"username": name, "password": password})
                assert r.status_code == 200, (name, r.status_code, r.text)
                refresh[name], access[name] = r.json()["refresh"], r.json()["access"]
            r = post(ref.base, "/api/token/blacklist/", {"refresh": refresh[LOGGED_OUT]})
            assert r.status_code == 200, r.text
            r = post(ref.base, "/api/token/refresh/", {"refresh": refresh[LOGGED_OUT]})
            check(r.status_code == 401, "the logged-out token is refused at Django")
            # After the sign-ins: Django itself re-hashes any non-default hash with its default
            # hasher on a successful sign-in.
            for name, (password, hasher) in USERS.items():
                if hasher != "pbkdf2_sha256":
                    rehash_in_django(ref_db, name, password, hasher)
            with sqlite3.connect(ref_db) as c:
                kinds = dict(c.execute("SELECT username, substr(password, 1, instr(password, '$') - 1) FROM auth_user"))
            check(kinds == {n: h for n, (_, h) in USERS.items()}, f"Django holds hashes of every kind: {kinds}")

            # 2. The import, twice.
            out = jwtd("import-django", "--from", f"sqlite://{ref_db}", "--database-url", f"sqlite://{jwtd_db}")
            print(out.stdout + out.stderr)
            check(out.returncode == 0, "jwtd import-django succeeds")
            check(f"users: {len(USERS)} new, 0 already imported, 0 skipped" in out.stdout, "import counts users")
            # signup + obtain = two outstanding tokens per user, one of them blacklisted
            check(f"refresh tokens: {2 * len(USERS)} new (1 of them blacklisted)" in out.stdout, "import counts tokens")
            again = jwtd("import-django", "--from", f"sqlite://{ref_db}", "--database-url", f"sqlite://{jwtd_db}")
            print(again.stdout + again.stderr)
            check(again.returncode == 0 and again.stdout.strip().endswith("import done: 0 new"), "a second import reports 0 new")
            check(f"users: 0 new, {len(USERS)} already imported" in again.stdout, "a second import finds every user")
            wrong = jwtd("import-django", "--from", f"sqlite://{jwtd_db}", "--database-url",
                         f"sqlite://{os.path.join(tmp, 'other.db')}")
            check(wrong.returncode != 0 and "table auth_user not found" in wrong.stderr,
                  f"a database without Django's tables is refused: {wrong.stderr.strip()}")
            for name in USERS:
                check(stored_hash(jwtd_db, ids[name]).startswith(USERS[name][1] + "$"),
                      f"{name} keeps Django's {USERS[name][1]} hash and id {ids[name]}")

            # 3. jwtd on the imported database, rotation off (SimpleJWT's default).
            with servers.start("jwtd", settings, tmp=jwtd_dir) as srv:
                for name, (password, _) in USERS.items():
                    r = post(srv.base, "/api/token/", {"username": name, "password": password})
                    check(r.status_code == 200, f"{name} signs in at jwtd with the Django password")
                    if r.status_code != 200:
                        continue
                    check(stored_hash(jwtd_db, ids[name]).startswith("$argon2id$"), f"{name}'s hash is now argon2id")
                    me = requests.get(ref.base + "/api/me/", headers={"Authorization": "Bearer " + r.json()["access"]},
                                      timeout=30)
                    check(me.status_code == 200 and me.json()["id"] == ids[name] and me.json()["username"] == name,
                          f"jwtd's access token for {name} authenticates at Django's /api/me/")
                    r = post(srv.base, "/api/token/", {"username": name, "password": password + "x"})
                    check(r.status_code == 401, f"{name}'s wrong password is refused at jwtd")
                for name in USERS:
                    if name == LOGGED_OUT:
                        continue
                    r = post(srv.base, "/api/token/refresh/", {"refresh": refresh[name]})
                    check(r.status_code == 200 and "access" in r.json(), f"{name}'s Django refresh token refreshes")
                    me = requests.get(ref.base + "/api/me/", headers={"Authorization": "Bearer " + r.json()["access"]},
                                      timeout=30)
                    check(me.status_code == 200 and me.json()["id"] == ids[name],
                          f"the access token jwtd made from it works at Django for {name}")
                    me = requests.get(srv.base + "/api/me/", headers={"Authorization": "Bearer " + access[name]},
                                      timeout=30)
                    check(me.status_code == 200 and me.json()["id"] == ids[name],
                          f"{name}'s Django access token works at jwtd")
                r = post(srv.base, "/api/token/refresh/", {"refresh": refresh[LOGGED_OUT]})
                check(r.status_code == 401 and r.json() == BLACKLISTED,
                      f"the blacklisted Django token is refused at jwtd: {r.status_code} {r.text}")
                r = post(srv.base, "/api/token/verify/", {"token": refresh[LOGGED_OUT]})
                check(r.status_code == 401 and r.json() == BLACKLISTED, "verify says it is blacklisted too")
                r = post(srv.base, "/api/auth/signup/", {"username": "newcomer", "password": "newcomer-password"})
                check(r.status_code == 201 and r.json()["user"]["id"] > max(ids.values()),
                      "a new sign-up at jwtd gets an id after Django's")

            # 4. Rotation on: Django's tokens rotate; the blacklisted one stays refused.
            with servers.start("jwtd", {**settings, "ROTATE_REFRESH_TOKENS": True}, tmp=jwtd_dir) as srv:
                r = post(srv.base, "/api/token/refresh/", {"refresh": refresh["carol"]})
                check(r.status_code == 200 and "refresh" in r.json(), "a Django refresh token rotates at jwtd")
                r2 = post(srv.base, "/api/token/refresh/", {"refresh": r.json()["refresh"]})
                check(r2.status_code == 200, "its successor refreshes")
                r = post(srv.base, "/api/token/refresh/", {"refresh": refresh[LOGGED_OUT]})
                check(r.status_code == 401 and r.json() == BLACKLISTED, "the blacklisted one stays blacklisted")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if failures:
        print(f"\n{len(failures)} check(s) failed")
        sys.exit(1)
    print("\nmigration from Django: every check passed")


if __name__ == "__main__":
    main()
