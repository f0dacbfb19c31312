"""Import of a custom user model, end to end, against the real SimpleJWT reference server.

The reference runs its "custom" profile (AUTH_USER_MODEL = accounts.User: UUID primary keys,
e-mail sign-in, is_staff, names, PermissionsMixin groups; TOKEN_CLAIMS email,groups). Users sign
up through its HTTP API, one joins a group and one becomes staff through Django itself
(manage.py shell), each signs in for live tokens, one logs out (blacklist). Then:
  - `jwtd import-django --dry-run` prints the report and writes nothing;
  - `jwtd import-django --user-table accounts_user` brings every user with its UUID, e-mail,
    flags and groups, records the database's id type as uuid; a second run changes nothing;
  - the same import into a database of integer ids stops with exit code 2, naming both types,
    and changes nothing;
  - `jwtd user list --json` shows the UUIDs, is_staff and groups, and pages with --limit/--after;
  - jwtd, started with USERNAME_FIELD=email USER_ID_TYPE=uuid and the same SIGNING_KEY, signs
    the users in with their Django passwords (by e-mail, any case), refreshes the refresh tokens
    Django issued (user_id = str(uuid)), answers "Token is blacklisted" for the logged-out one,
    and writes the users' groups into its tokens (TOKEN_CLAIMS).

Environment: SHARED (the shared folder), JWTD_BIN (the jwtd binary). Run it with the reference
virtualenv's python (30-django.sh does this).
"""
import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.join(os.environ["SHARED"], "harness"))
import servers  # noqa: E402

JWTD = os.environ["JWTD_BIN"]
REF_PYTHON = os.path.join(os.environ.get("PYENV", "/tmp/simplejwt-venv"), "bin", "python")
REFERENCE = os.path.join(os.environ["SHARED"], "reference", "simplejwt", "project")
SECRET = "django-insecure-custom-import-0123456789abcdefghijklmnop"
BLACKLISTED = {"detail": "Token is blacklisted", "code": "token_not_valid"}
PROFILE = {"SIGNING_KEY": SECRET, "USERNAME_FIELD": "email", "TOKEN_CLAIMS": "email,groups"}

# e-mail -> password; Django's normalize_email lowercases the domain of bob's at sign-up
USERS = {
    "ada@example.com": "ada-lovelace-1815",
    "bob@Example.COM": "bob's password, ünïcode ✓",
    "carol@example.com": "carol-custom-model-password",
}
GROUPED, STAFF, LOGGED_OUT = "ada@example.com", "bob@Example.COM", "carol@example.com"

failures = []


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what)
    if not condition:
        failures.append(what)


def post(base, path, body):
    return requests.post(base + path, json=body, timeout=60)


def stored(email):
    """The e-mail address as Django stores it (BaseUserManager.normalize_email)."""
    name, domain = email.rsplit("@", 1)
    return name + "@" + domain.lower()


def claims(token):
    """A token's claims, read without checking the signature (the servers checked it)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def django_shell(ref_dir, code):
    env = servers._env(PROFILE)
    env["REF_DB"] = os.path.join(ref_dir, "ref.sqlite3")
    p = subprocess.run([REF_PYTHON, "manage.py", "shell", "-v", "0", "-c", code], cwd=REFERENCE, env=env,
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("reference shell failed: " + p.stderr)
    return p.stdout


def jwtd(*args, stdin=None, settings=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWTD_")}
    env.update({"JWTD_" + k: v for k, v in (settings or {}).items()})
    return subprocess.run([JWTD, *args], capture_output=True, text=True, timeout=300, input=stdin, env=env)


def listed(db, *extra, id_type="uuid"):
    out = jwtd("user", "list", "--json", "--database-url", f"sqlite://{db}", *extra, settings={"USER_ID_TYPE": id_type})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def main():
    tmp = tempfile.mkdtemp(prefix="jwtd-custom-import-")
    ref_dir, jwtd_dir = os.path.join(tmp, "ref"), os.path.join(tmp, "jwtd")
    os.makedirs(ref_dir)
    os.makedirs(jwtd_dir)
    ref_db, jwtd_db = os.path.join(ref_dir, "ref.sqlite3"), os.path.join(jwtd_dir, "jwtd.db")
    int_db = os.path.join(tmp, "int.db")
    source = ["--from", f"sqlite://{ref_db}", "--user-table", "accounts_user"]
    try:
        with servers.start("simplejwt", PROFILE, tmp=ref_dir) as ref:
            # 1. Life at Django, custom user model.
            ids, refresh = {}, {}
            for email, password in USERS.items():
                r = post(ref.base, "/api/auth/signup/", {"email": email, "password": password})
                assert r.status_code == 201, (email, r.status_code, r.text)
                ids[email] = r.json()["user"]["id"]
            django_shell(ref_dir, (
                "from django.contrib.auth import get_user_model\n"
                "from django.contrib.auth.models import Group\n"
                "User = get_user_model()\n"
                f"g = Group.objects.create(name='editors')\n"
                f"User.objects.get(email__iexact={GROUPED!r}).groups.add(g)\n"
                f"User.objects.filter(email__iexact={STAFF!r}).update(is_staff=True, first_name='Bob')\n"
                "Group.objects.create(name='nobody-yet')\n"
            ))
            for email, password in USERS.items():
                r = post(ref.base, "/api/token/", {"email": email, "password": password})
                assert r.status_code == 200, (email, r.status_code, r.text)
                refresh[email] = r.json()["refresh"]
            check(claims(refresh[GROUPED]).get("groups") == ["editors"], "Django writes the groups claim")
            check(claims(refresh[GROUPED])["user_id"] == ids[GROUPED], "Django's user_id is str(uuid)")
            r = post(ref.base, "/api/token/blacklist/", {"refresh": refresh[LOGGED_OUT]})
            assert r.status_code == 200, r.text
            with sqlite3.connect(ref_db) as c:
                raw = [row[0] for row in c.execute("SELECT id FROM accounts_user")]
            check(all(len(i) == 32 and "-" not in i for i in raw), f"Django's SQLite keeps UUIDs as 32 hex: {raw[0]}")

        # 2. A dry run: the report, nothing written.
        dry = jwtd("import-django", *source, "--dry-run", "--database-url", f"sqlite://{jwtd_db}")
        print(dry.stdout + dry.stderr)
        check(dry.returncode == 0 and dry.stdout.strip().endswith("(nothing written)"), "a dry run succeeds")
        check(f"users: {len(USERS)} new, 0 already imported, 0 skipped" in dry.stdout, "the dry run counts users")
        check(not os.path.exists(jwtd_db), "the dry run left no database behind")
        check(listed(jwtd_db)["users"] == [], "the dry run wrote no user")

        # 3. The import, in batches of 2, twice.
        started = time.monotonic()
        out = jwtd("import-django", *source, "--batch-size", "2", "--database-url", f"sqlite://{jwtd_db}")
        print(out.stdout + out.stderr)
        print(f"(import took {time.monotonic() - started:.2f} s)")
        check(out.returncode == 0, "jwtd import-django --user-table accounts_user succeeds")
        check(out.stderr == "note: these users have uuid ids: serve this database with USER_ID_TYPE=uuid\n",
              f"no progress output when stderr is not a terminal, a note on USER_ID_TYPE: {out.stderr!r}")
        check(f"users: {len(USERS)} new, 0 already imported, 0 skipped; 1 of the new are staff" in out.stdout,
              "the import counts users and staff")
        check("user ids: uuid (recorded as the database's id type)" in out.stdout, "the id type is recorded")
        check("user table without: username" not in out.stdout, "accounts_user has every column jwtd reads")
        check("groups: 2 new, 1 memberships" in out.stdout, "groups and memberships are imported")
        # sign-up and sign-in: two outstanding tokens per user, one of them blacklisted
        check(f"refresh tokens: {2 * len(USERS)} new (1 of them blacklisted)" in out.stdout, "the import counts tokens")
        check(dry.stdout.replace("dry run: nothing is written; an import would do this\n", "")
              .replace("dry run done", "import done").replace(" (nothing written)", "")
              == out.stdout, "the dry run's report is the import's")
        with sqlite3.connect(jwtd_db) as c:
            meta = dict(c.execute("SELECT name, value FROM meta"))
        check(meta.get("user_id_type") == "uuid", f"meta.user_id_type is uuid: {meta}")
        again = jwtd("import-django", *source, "--database-url", f"sqlite://{jwtd_db}")
        print(again.stdout + again.stderr)
        check(again.returncode == 0 and again.stdout.strip().endswith("import done: 0 new"),
              "a second import changes nothing")

        users = {u["email"]: u for u in listed(jwtd_db)["users"]}
        check(sorted(users) == sorted(stored(e) for e in USERS), f"every user is listed: {sorted(users)}")
        for email in USERS:
            u = users.get(stored(email), {})
            check(u.get("uuid") == ids[email] and isinstance(u.get("id"), int), f"{email} keeps its UUID")
            check(u.get("username") == "", f"{email} has no username, as in Django")
        check(users.get(stored(STAFF), {}).get("is_staff") is True and users[stored(STAFF)]["first_name"] == "Bob",
              "bob is staff, with his first name")
        check(users.get(stored(GROUPED), {}).get("groups") == ["editors"], "ada is in editors")
        check(not users.get(stored(LOGGED_OUT), {}).get("is_staff", True), "carol is not staff")
        first = listed(jwtd_db, "--limit", "2")
        rest = listed(jwtd_db, "--limit", "2", "--after", str(first["next"]))
        check(len(first["users"]) == 2 and len(rest["users"]) == 1 and rest["next"] is None,
              "user list pages with --limit and --after")

        # 4. UUID users into a database of integer ids: refused, exit 2, nothing changed.
        made = jwtd("user", "create", "mallory", "--password-stdin", "--database-url", f"sqlite://{int_db}",
                    stdin="mallory-password\n")
        assert made.returncode == 0, made.stderr
        before = listed(int_db, id_type="int")
        wrong = jwtd("import-django", *source, "--database-url", f"sqlite://{int_db}")
        print(wrong.stdout + wrong.stderr)
        check(wrong.returncode == 2 and "uuid" in wrong.stderr and "int" in wrong.stderr,
              f"a UUID import into an int database stops with exit 2 naming both: {wrong.returncode}")
        check(listed(int_db, id_type="int") == before, "and changes nothing")

        # 5. jwtd on the imported database.
        settings = {**PROFILE, "USER_ID_TYPE": "uuid"}
        with servers.start("jwtd", settings, tmp=jwtd_dir) as srv:
            for email, password in USERS.items():
                r = post(srv.base, "/api/token/", {"email": email.upper(), "password": password})
                check(r.status_code == 200, f"{email} signs in at jwtd by e-mail (any case): {r.status_code} {r.text}")
                if r.status_code == 200:
                    c = claims(r.json()["refresh"])
                    check(c.get("user_id") == ids[email], f"jwtd's token names {email} by its UUID")
                    want = ["editors"] if email == GROUPED else []
                    check(c.get("groups") == want and c.get("email") == stored(email),
                          f"jwtd writes {email}'s groups and e-mail into its tokens: {c}")
            for email in USERS:
                r = post(srv.base, "/api/token/refresh/", {"refresh": refresh[email]})
                if email == LOGGED_OUT:
                    check(r.status_code == 401 and r.json() == BLACKLISTED,
                          f"the blacklisted Django token is refused at jwtd: {r.status_code} {r.text}")
                else:
                    check(r.status_code == 200 and "access" in r.json(),
                          f"{email}'s Django refresh token refreshes at jwtd: {r.status_code} {r.text}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if failures:
        print(f"\n{len(failures)} check(s) failed")
        sys.exit(1)
    print("\nimport of a custom user model: every check passed")


if __name__ == "__main__":
    main()
