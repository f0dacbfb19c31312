"""Interop with asymmetric keys (issue 4): the SimpleJWT reference server, holding only jwtd's RS256
public key as VERIFYING_KEY (its own SIGNING_KEY is another RSA key), accepts jwtd's access tokens
at /api/me/ and /api/token/verify/, and refuses a token of another key.

Needs $SHARED (the shared folder), $PYENV (the reference virtualenv) and $JWTD_BIN.
"""
import os
import subprocess
import sys
import tempfile

SHARED = os.environ["SHARED"]
sys.path.insert(0, os.path.join(SHARED, "conformance"))
import conformance_lib as lib  # noqa: E402  (also puts ../harness on sys.path)
import servers  # noqa: E402

JWTD_BIN = os.environ["JWTD_BIN"]
results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))


def generate(folder):
    subprocess.run([JWTD_BIN, "keys", "generate", "--algorithm", "RS256", "--out", folder],
                   check=True, capture_output=True, env={"PATH": os.environ.get("PATH", "")})
    return os.path.join(folder, "private.pem"), os.path.join(folder, "public.pem")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        jwtd_private, jwtd_public = generate(os.path.join(tmp, "jwtd"))
        other_private, _ = generate(os.path.join(tmp, "reference"))
        jwtd_settings = {"ALGORITHM": "RS256", "SIGNING_KEY": jwtd_private, **lib.BASE_SETTINGS}
        ref_settings = {"ALGORITHM": "RS256", "SIGNING_KEY": other_private, "VERIFYING_KEY": jwtd_public}
        with servers.start("jwtd", jwtd_settings) as jwtd, servers.start("simplejwt", ref_settings) as ref:
            user = lib.signup(jwtd, username=lib.unique_name("keys"), password="interop-pass-123")
            lib.reference_shell(ref, (
                "from django.contrib.auth.models import User; "
                f"User.objects.create_user({user.username!r}, password={user.password!r}, id={int(user.id)})"))
            check("jwtd access token carries a kid", "kid" in lib.header(user.access))

            r = lib.me(ref, user.access)
            check("reference /api/me/ accepts jwtd's access token",
                  r.status_code == 200 and r.json().get("username") == user.username, f"{r.status_code} {r.text[:200]}")
            r = lib.post(ref, "/api/token/verify/", {"token": user.access})
            check("reference verify accepts jwtd's access token", r.status_code == 200, f"{r.status_code} {r.text[:200]}")

            new_access = lib.expect(lib.refresh(jwtd, user.refresh), 200)["access"]
            r = lib.me(ref, new_access)
            check("reference accepts an access token jwtd made by refresh", r.status_code == 200,
                  f"{r.status_code} {r.text[:200]}")

            with open(other_private, "rb") as f:
                stranger = lib.forge(jwtd, "access", user.id, key=f.read(), alg="RS256")
            r = lib.me(ref, stranger)
            check("reference refuses a token of another RSA key", r.status_code == 401, f"{r.status_code}")
            r = lib.me(jwtd, stranger)
            check("jwtd refuses a token of another RSA key", r.status_code == 401, f"{r.status_code}")
    print(f"keys interop: {results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
