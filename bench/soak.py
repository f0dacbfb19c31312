"""Soak test: ten minutes (SOAK_SECONDS) of mixed load against a release jwtd, mostly
Bearer-authenticated reads with some refreshes and sign-ins (the shared benchmark's mixed
scenario, 90/9/1), sampling the server's resident memory every 10 s. Passes when there is no
error response and resident memory after warm-up grows by less than 10 %.

    cargo build --release
    python3 bench/soak.py            # needs wrk and ../shared beside this folder

Not part of CI: it runs for ten minutes."""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("SHARED") or os.path.join(HERE, "..", "..", "shared")
sys.path.insert(0, os.path.join(SHARED, "harness"))
import servers  # noqa: E402

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
WARMUP = int(os.environ.get("SOAK_WARMUP", "60"))
CONNECTIONS = int(os.environ.get("SOAK_CONNECTIONS", "64"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    os.environ.setdefault("JWTD_BIN", os.path.join(HERE, "..", "target", "release", "jwtd"))
    settings = {"ACCESS_TOKEN_LIFETIME": 3600, "LOGIN_RATE": "off", "SIGNUP_RATE": "off"}
    with servers.start("jwtd", settings) as srv:
        creds = {"username": "soak", "password": "soak-password-1"}
        pair = requests.post(srv.url("/api/auth/signup/"), json=creds, timeout=30).json()
        samples = []
        done = threading.Event()

        def sample():
            while not done.is_set():
                samples.append((time.time(), rss_kib(srv.proc.pid)))
                done.wait(10)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out = tempfile.mktemp(suffix=".json")
        env = dict(os.environ, BENCH_ACCESS=pair["access"], BENCH_REFRESH=pair["refresh"],
                   BENCH_USERNAME=creds["username"], BENCH_PASSWORD=creds["password"], BENCH_MIX="90,9,1",
                   BENCH_JSON_OUT=out, BENCH_THREADS="2", BENCH_PREFIX="")
        started = time.time()
        wrk = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "10s",
                              "-s", os.path.join(SHARED, "bench", "lua", "mixed.lua"), srv.base],
                             env=env, capture_output=True, text=True)
        done.set()
        sampler.join()
        print(wrk.stdout)
        result = json.load(open(out)) if os.path.exists(out) else {}
        errors = (sum(result.get(k, 0) or 0 for k in ("errors_connect", "errors_read", "errors_write",
                                                        "errors_status", "errors_timeout"))
                  if result else None)
        after_warmup = [kib for t, kib in samples if t - started >= WARMUP]
        start_kib, end_kib = (after_warmup[0], after_warmup[-1]) if after_warmup else (0, 0)
        peak_kib = max(after_warmup or [0])
        growth = (end_kib - start_kib) / start_kib * 100 if start_kib else 0.0
        print(f"requests: {result.get('requests')}  errors (non-2xx + socket): {errors}")
        print(f"resident memory after {WARMUP}s warm-up: {start_kib / 1024:.1f} MiB; at the end: "
              f"{end_kib / 1024:.1f} MiB; peak {peak_kib / 1024:.1f} MiB; growth {growth:+.1f} %")
        ok = errors == 0 and growth < 10
        print("soak:", "ok" if ok else "FAILED")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
