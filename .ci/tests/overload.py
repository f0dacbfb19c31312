"""Overload: far more concurrent connections than two cores can serve (5,000 keep-alive
connections from wrk, OVERLOAD_CONNECTIONS) against a release jwtd, in four rounds, while a
second client keeps refreshing. The server must stay up, never reset a connection, answer every
request with 200 or, past its capacity, 503 JSON; its resident memory must stay bounded (under a
ceiling, and the last round's peak within 10 % of the highest before it: memory levels off rather
than growing with every wave of connections; the first waves still fill the allocator's caches), and it must serve normally afterwards."""
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ["SHARED"], "harness"))
import servers  # noqa: E402

CONNECTIONS = int(os.environ.get("OVERLOAD_CONNECTIONS", "5000"))
ROUND_SECS = int(os.environ.get("OVERLOAD_SECONDS", "10"))
ROUNDS = 4
RSS_CEILING_MIB = 256
failures = []


def check(what, cond, detail=""):
    print(f"{'ok  ' if cond else 'FAIL'} {what}{(' -> ' + detail) if detail else ''}")
    if not cond:
        failures.append(what)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wrk_round(srv, access):
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{ROUND_SECS}s", "--timeout", "30s",
           "-s", os.path.join(HERE, "overload.lua"), srv.url("/"), "--", access]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=ROUND_SECS + 120).stdout
    statuses = json.loads(re.search(r"statuses (\{.*\})", out).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()))) if errors else {}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return statuses, errors, float(rps.group(1)) if rps else 0.0


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, CONNECTIONS * 2 + 1000)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))  # wrk and jwtd inherit it
    settings = {"ACCESS_TOKEN_LIFETIME": 3600, "LOGIN_RATE": "off", "SIGNUP_RATE": "off"}
    with servers.start("jwtd", settings) as srv:
        pid = srv.proc.pid
        pair = requests.post(srv.url("/api/auth/signup/"),
                             json={"username": "overload", "password": "overload-pass-1"}, timeout=30).json()
        stop = threading.Event()  # ends the refresher
        refreshes = {}
        peaks = []

        def refresher():
            s = requests.Session()
            while not stop.is_set():
                try:
                    r = s.post(srv.url("/api/token/refresh/"), json={"refresh": pair["refresh"]}, timeout=30)
                    key = str(r.status_code)
                    if r.status_code == 503 and not isinstance(r.json().get("detail"), str):
                        key = "503-not-json"
                except requests.RequestException as e:
                    key = type(e).__name__
                refreshes[key] = refreshes.get(key, 0) + 1
                stop.wait(0.1)

        def sampler(into, round_over):
            while not round_over.is_set():
                into.append(rss_mib(pid))
                round_over.wait(0.5)

        t = threading.Thread(target=refresher)
        t.start()
        start_rss = rss_mib(pid)
        for n in range(1, ROUNDS + 1):
            samples, round_over = [], threading.Event()
            s = threading.Thread(target=sampler, args=(samples, round_over))
            s.start()
            statuses, errors, rps = wrk_round(srv, pair["access"])
            round_over.set()
            s.join()
            peaks.append(max(samples + [0.0]))
            print(f"round {n}: {rps:.0f} req/s, statuses {statuses}, socket errors {errors}, "
                  f"RSS peak {peaks[-1]:.1f} MiB")
            check(f"round {n}: the server is still running", srv.proc.poll() is None)
            check(f"round {n}: every answer is 200 or 503", set(statuses) <= {"200", "503"}, str(statuses))
            check(f"round {n}: requests were served", statuses.get("200", 0) > 0, str(statuses))
            check(f"round {n}: no connection reset (read/write errors)",
                  errors.get("read", 0) == 0 and errors.get("write", 0) == 0, str(errors))
            check(f"round {n}: RSS under {RSS_CEILING_MIB} MiB", peaks[-1] < RSS_CEILING_MIB, f"{peaks[-1]:.1f} MiB")
        stop.set()
        t.join()
        print(f"start RSS {start_rss:.1f} MiB; refreshes during the load: {refreshes}")
        check("memory levels off: the last round's peak is within 10 % of the highest before it",
              peaks[-1] <= max(peaks[:-1]) * 1.1 + 4, " -> ".join(f"{p:.1f}" for p in peaks) + " MiB")
        check("refreshes under load: 200 or 503 JSON only", set(refreshes) <= {"200", "503"}, str(refreshes))
        r = requests.get(srv.url("/api/me/"), headers={"Authorization": f"Bearer {pair['access']}"}, timeout=10)
        check("afterwards /api/me/ answers 200", r.status_code == 200, str(r.status_code))
        r = requests.post(srv.url("/api/token/refresh/"), json={"refresh": pair["refresh"]}, timeout=10)
        check("afterwards refresh answers 200", r.status_code == 200, str(r.status_code))
        log = srv.log()
        check("no panic in the log", "panicked" not in log)
    if failures:
        print(f"{len(failures)} overload check(s) failed")
        sys.exit(1)
    print("overload: all checks passed")


if __name__ == "__main__":
    main()
