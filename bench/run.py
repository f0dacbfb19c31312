"""jwtd's benchmark against its ceilings and the reference, on this machine, in one sitting.

    python3 bench/run.py                # release build, then every measurement (about 25 minutes)
    python3 bench/run.py --runs 1 --no-build
    python3 bench/run.py --postgres     # and then bench/postgres.py: refresh and rotate on PostgreSQL

Builds release (jwtd and bench/ceiling), then:
  1. the hello-world ceiling: bench/ceiling's bare axum server under ../shared/bench's healthz scenario;
  2. argon2id's ceiling: hashes per second at jwtd's parameters on every core;
  3. `../shared/bench/bench.py --vs jwtd simplejwt:2`: every scenario, jwtd and the reference run
     alternately;
  4. sign-in alone, and /api/me/ and refresh latency while a sign-in flood saturates the hash pool;
  5. start-up to ready (first /healthz answer), on a fresh database;
  6. with --postgres, bench/postgres.py (its own docstring says what it measures);
and prints one table: for every scenario and the ceiling req/s, p99, RSS and requests per server
CPU-second (bench.py's `req/cpu-s`: requests over the CPU time of the server's process tree), then
the performance targets (issue 21) each with its verdict:
  - req per server CPU-second as a share of the ceiling's: me >= 50 %, verify >= 60 %, refresh
    (no rotation) >= 45 % with p99 < 5 ms. The ratio of CPU-seconds, not of req/s: wrk runs on the
    same cores, so req/s moves with the machine and with wrk's share, the CPU per request much less;
  - rotate >= 20k req/s with p99 < 8 ms, and the CPU of the wrk client itself: its Lua script parses
    every answer for the next token and costs about as much as the server. How it is measured:
    run.py puts a `wrk` wrapper first on bench.py's PATH that runs the real wrk as its child, reads
    the child's rusage (user + system CPU seconds, from wait4) when it exits and logs it with the
    request count wrk printed; each of jwtd's rotate runs in bench.py's JSON is matched to its wrk
    by that count (exact: the CPU of the whole wrk process, all its threads, no sampling);
  - mixed (90/9/1) >= 80 % of its argon2id bound: 1 % of the requests sign in, so N req/s need
    N/100 hashes/s, and the bound is argon2id's all-core rate x 100;
  - peak RSS (VmHWM) <= 32 MiB in every scenario whose load has no sign-ins (me, verify, refresh,
    rotate: their preparation signs in, one at a time (bench.py --prep-concurrency 1), so one
    hash's 19 MiB is in that peak, as in the start-up dummy hash), and in signin and mixed <= 16 MiB + the hash pool's threads (one per core,
    crates/jwtd/src/service/hashing.rs) x argon2id's memory (19 MiB, m=19456 KiB);
  - and, unchanged from the previous round, x reference, sign-in's share of argon2id's rate, p99
    during a sign-in flood and start-up time.
Needs wrk and the reference's virtualenv (../shared/reference/simplejwt/setup.sh)."""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("SHARED") or os.path.join(ROOT, "..", "shared")
BENCH = os.path.join(SHARED, "bench")
sys.path.insert(0, os.path.join(SHARED, "harness"))
import servers  # noqa: E402

JWTD = os.path.join(ROOT, "target", "release", "jwtd")
CEILING = os.path.join(ROOT, "target", "release", "jwtd-bench-ceiling")
SCENARIOS = ["me", "verify", "refresh", "rotate", "signin", "mixed"]
WITHOUT_SIGNIN = ["me", "verify", "refresh", "rotate"]
ARGON2_MIB = 19  # jwtd::password::OWASP_MEMORY_KIB, 19 x 1024 KiB, held per hashing thread while it hashes
HASH_THREADS = len(os.sched_getaffinity(0))  # service::hashing::PasswordPool: one thread per usable core


def wrk_wrapper(argv):
    """Runs the real wrk ($BENCH_REAL_WRK) with `argv`, passes its output and exit code on, and
    appends one JSON line to $BENCH_WRK_LOG: the arguments, the requests wrk printed and the CPU
    seconds (user + system, from wait4's rusage) the wrk process used."""
    proc = subprocess.Popen([os.environ["BENCH_REAL_WRK"], *argv], stdout=subprocess.PIPE)
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    done = re.search(rb"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", out, re.M)
    with open(os.environ["BENCH_WRK_LOG"], "a") as f:
        f.write(json.dumps({"argv": argv, "requests": int(done.group(1)) if done else None,
                            "cpu_s": usage.ru_utime + usage.ru_stime}) + "\n")
    return proc.returncode


def install_wrk_wrapper(tmp):
    """Puts a `wrk` that runs wrk_wrapper first on PATH; returns the log file it appends to."""
    real = shutil.which("wrk")
    if not real:
        sys.exit("wrk is missing (apt-get install wrk)")
    folder = os.path.join(tmp, "wrk-wrapper")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "wrk")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec "{sys.executable}" "{os.path.abspath(__file__)}" --wrk-wrapper "$@"\n')
    os.chmod(path, 0o755)
    log = os.path.join(tmp, "wrk-rusage.jsonl")
    os.environ.update(BENCH_REAL_WRK=real, BENCH_WRK_LOG=log, PATH=folder + os.pathsep + os.environ["PATH"])
    return log


def wrk_cpu(log, runs, script):
    """wrk's CPU seconds for each of `runs` (bench.py's per-run results), matched to the wrapper's
    log by the script and the request count; None for a run without a match."""
    with open(log) as f:
        logged = [json.loads(line) for line in f if line.strip()]
    logged = [e for e in logged if any(a.endswith("/" + script) for a in e["argv"])]
    found = []
    for r in runs:
        hit = next((e for e in logged if e["requests"] == r["requests"]), None)
        if hit:
            logged.remove(hit)
        found.append(hit["cpu_s"] if hit else None)
    return found


def bench_py(args, json_out):
    cmd = [sys.executable, os.path.join(BENCH, "bench.py"), *args, "--json", json_out]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "JWTD_BIN": JWTD})
    with open(json_out) as f:
        return json.load(f)


def hello_world(runs, tmp):
    proc = subprocess.Popen([CEILING, "0"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().rsplit(":", 1)[1])
        out = bench_py(["--url", f"http://127.0.0.1:{port}", "--pid", str(proc.pid), "--scenarios", "healthz",
                        "--healthz-path", "/", "--runs", str(runs)], os.path.join(tmp, "ceiling.json"))
        return out["results"][0]
    finally:
        proc.terminate()
        proc.wait()


def argon2_rate():
    out = subprocess.run([CEILING, "argon2", "5"], capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1])


def wrk_p99(url, script, env, connections, seconds):
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", os.path.join(BENCH, "lua", script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}).stdout
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return (float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"), float(rps.group(1)) if rps else 0.0)


def under_signin_flood(seconds):
    """p99 of /api/me/ and of refresh while 16 connections sign in as fast as the hash pool allows."""
    import requests
    settings = {"ACCESS_TOKEN_LIFETIME": 3600, "LOGIN_RATE": "off", "SIGNUP_RATE": "off"}
    with servers.start("jwtd", settings) as srv:
        creds = {"username": "flood", "password": "flood-password-1"}
        pair = requests.post(srv.url("/api/auth/signup/"), json=creds, timeout=30).json()
        env = {"BENCH_ACCESS": pair["access"], "BENCH_REFRESH": pair["refresh"],
               "BENCH_USERNAME": creds["username"], "BENCH_PASSWORD": creds["password"]}
        flood = {}
        t = threading.Thread(target=lambda: flood.update(
            zip(("p99", "rps"), wrk_p99(srv.url("/"), "signin.lua", env, 16, 2 * seconds + 4))))
        t.start()
        time.sleep(2)  # the flood fills the hash pool's queue first
        me = wrk_p99(srv.url("/"), "me.lua", env, 64, seconds)
        refresh = wrk_p99(srv.url("/"), "refresh.lua", env, 64, seconds)
        t.join()
        return {"me": me, "refresh": refresh, "signin": (flood.get("p99"), flood.get("rps"))}


def startup_ms(times=5):
    """Milliseconds from spawning `jwtd serve` on a fresh database to its first /healthz answer."""
    found = []
    for _ in range(times):
        with tempfile.TemporaryDirectory() as tmp:
            port = servers.free_port()
            env = {**os.environ, "JWTD_ADDR": f"127.0.0.1:{port}", "JWTD_DATABASE_URL": f"sqlite://{tmp}/jwtd.db",
                   "JWTD_SIGNING_KEY": "bench-signing-key-" + "x" * 40}
            started = time.perf_counter()
            proc = subprocess.Popen([JWTD, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                while True:
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                            if s.recv(16).startswith(b"HTTP/1.1 200"):
                                break
                    except OSError:
                        time.sleep(0.001)
                found.append((time.perf_counter() - started) * 1e3)
            finally:
                proc.terminate()
                proc.wait()
    return sorted(found)[len(found) // 2]


def row(label, value, target, met):
    verdict = "reported" if met is None else "met" if met else "NOT MET"
    return f"{label:<44} {value:>30}  {target:<34} {verdict}"


def per_cpu(r):
    """Requests per server CPU-second of a bench.py result (0 when bench.py had no CPU figure)."""
    return r.get("req_per_server_cpu_s_median") or 0.0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--wrk-wrapper":
        sys.exit(wrk_wrapper(sys.argv[2:]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per scenario and target (default 3)")
    ap.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    ap.add_argument("--flood-seconds", type=int, default=10)
    ap.add_argument("--postgres", action="store_true",
                    help="then run bench/postgres.py (refresh and rotate on a throwaway PostgreSQL) too")
    args = ap.parse_args()
    os.environ.setdefault("JWTD_BIN", JWTD)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "jwtd", "-p", "jwtd-bench-ceiling"],
                       cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="jwtd-bench-")
    plain_env = dict(os.environ)
    wrk_log = install_wrk_wrapper(tmp)
    ceiling = hello_world(args.runs, tmp)
    hashes = argon2_rate()
    # One sign-in at a time while bench.py prepares (the rotation pool's sign-ins too), so a
    # scenario's peak RSS holds one hash's memory, not the preparation's concurrent hashes.
    vs = bench_py(["--vs", "jwtd", "simplejwt:2", "--scenarios", ",".join(SCENARIOS), "--runs", str(args.runs),
                   "--prep-concurrency", "1"], os.path.join(tmp, "vs.json"))
    # Sign-in alone too: in the alternating runs, the reference is still working off its queue of
    # PBKDF2 sign-ins (p50 of seconds) when jwtd's turn starts, and takes CPU from the hash pool.
    alone = bench_py(["--target", "jwtd", "--scenarios", "signin", "--runs", str(args.runs)],
                     os.path.join(tmp, "signin.json"))["results"][0]
    flood = under_signin_flood(args.flood_seconds)
    start = startup_ms()

    res = {(r["target"], r["scenario"]): r for r in vs["results"]}
    ref_target = next(t for t, _ in res if t != "jwtd")
    ceil, ceil_cpu = ceiling["rps_median"], per_cpu(ceiling)
    rot = res[("jwtd", "rotate")]
    rot_wrk = [(c, r) for c, r in zip(wrk_cpu(wrk_log, rot["per_run"], "rotate.lua"), rot["per_run"]) if c is not None]
    # wrk's CPU per wall second (200 % = both cores of a 2-core machine) and per request, medians of the runs.
    wrk_pct = sorted(c / (r["duration_us"] / 1e6) * 100 for c, r in rot_wrk)
    wrk_us = sorted(c / r["requests"] * 1e6 for c, r in rot_wrk)
    print()
    print(f"# {vs['machine']['nproc']} x {vs['machine']['cpu_model']}; wrk -t2 -c64 (signin -c16); "
          f"medians of {args.runs} runs; {time.strftime('%Y-%m-%d %H:%M')}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
    print(f"hello-world ceiling: {ceil:,.0f} req/s, {ceil_cpu:,.0f} req per server CPU-second "
          f"(p99 {ceiling['p99_ms_median']:.2f} ms, RSS {ceiling['peak_rss_mib']:.1f} MiB); "
          f"argon2id at m=19 MiB t=2 on all cores: {hashes:.1f} hashes/s")
    print()
    print(f"{'scenario':<9} {'jwtd req/s':>11} {'p99 ms':>7} {'RSS MiB':>8} {'req/cpu-s':>10} {'% ceil cpu':>10} "
          f"{'ref req/s':>10} {'ref p99':>8} {'x ref':>7}")
    print(f"{'ceiling':<9} {ceil:>11,.0f} {ceiling['p99_ms_median']:>7.2f} {ceiling['peak_rss_mib']:>8.1f} "
          f"{ceil_cpu:>10,.0f} {100.0:>9.1f}%")
    for s in SCENARIOS:
        j, r = res[("jwtd", s)], res[(ref_target, s)]
        print(f"{s:<9} {j['rps_median']:>11,.0f} {j['p99_ms_median']:>7.2f} {j['peak_rss_mib']:>8.1f} "
              f"{per_cpu(j):>10,.0f} {100 * per_cpu(j) / ceil_cpu if ceil_cpu else 0:>9.1f}% "
              f"{r['rps_median']:>10,.1f} {r['p99_ms_median']:>8.1f} {j['rps_median'] / r['rps_median']:>7.1f}")
    print("req/cpu-s = requests per CPU-second of the server's process tree; % ceil cpu = that as a share "
          "of the ceiling's")
    print()
    lines = []
    for s, share in (("me", 50), ("verify", 60), ("refresh", 45)):
        j = res[("jwtd", s)]
        got = 100 * per_cpu(j) / ceil_cpu if ceil_cpu else 0.0
        lines.append(row(f"{s}: req per CPU-s, share of the ceiling's", f"{per_cpu(j):,.0f} = {got:.1f} %",
                         f">= {share} %", got >= share))
    j = res[("jwtd", "refresh")]
    lines.append(row("refresh: p99", f"{j['p99_ms_median']:.2f} ms", "< 5 ms", j["p99_ms_median"] < 5))
    j, r = rot, res[(ref_target, "rotate")]
    lines.append(row("rotate: req/s", f"{j['rps_median']:,.0f}", ">= 20,000", j["rps_median"] >= 20000))
    lines.append(row("rotate: p99", f"{j['p99_ms_median']:.2f} ms", "< 8 ms", j["p99_ms_median"] < 8))
    if wrk_pct:
        lines.append(row("rotate: wrk client's CPU (reported)",
                         f"{wrk_pct[len(wrk_pct) // 2]:.0f} % = {wrk_us[len(wrk_us) // 2]:.1f} us/req",
                         f"server {j['server_cpu_pct_median']:.0f} % = "
                         f"{1e6 / per_cpu(j) if per_cpu(j) else 0:.1f} us/req",
                         None))
    else:
        lines.append(row("rotate: wrk client's CPU (reported)", "no wrk run matched", "", None))
    lines.append(row("rotate: x reference", f"{j['rps_median'] / r['rps_median']:.1f}", ">= 50",
                     j["rps_median"] >= 50 * r["rps_median"]))
    j, r = res[("jwtd", "mixed")], res[(ref_target, "mixed")]
    bound = hashes * 100
    lines.append(row("mixed: share of its argon2id bound",
                     f"{j['rps_median']:,.0f} of {bound:,.0f} = {100 * j['rps_median'] / bound:.1f} %", ">= 80 %",
                     j["rps_median"] >= 0.8 * bound))
    lines.append(row("mixed: x reference", f"{j['rps_median'] / r['rps_median']:.1f}", ">= 50",
                     j["rps_median"] >= 50 * r["rps_median"]))
    lines.append(row("signin (alone): share of argon2id's ceiling",
                     f"{alone['rps_median']:.1f}/s = {100 * alone['rps_median'] / hashes:.1f} %", ">= 85 %",
                     alone["rps_median"] >= 0.85 * hashes))
    for s in ("me", "refresh"):
        p99 = flood[s][0]
        lines.append(row(f"{s} p99 during a sign-in flood", f"{p99:.2f} ms ({flood[s][1]:,.0f} req/s)", "< 20 ms",
                         p99 < 20))
    worst = max(res[("jwtd", s)]["peak_rss_mib"] for s in WITHOUT_SIGNIN)
    lines.append(row("RSS, highest without sign-ins in the load", f"{worst:.1f} MiB", "<= 32 MiB", worst <= 32))
    limit = 16 + HASH_THREADS * ARGON2_MIB
    worst = max(res[("jwtd", "signin")]["peak_rss_mib"], res[("jwtd", "mixed")]["peak_rss_mib"], alone["peak_rss_mib"])
    lines.append(row("RSS, highest with sign-ins (signin, mixed)", f"{worst:.1f} MiB",
                     f"<= 16 + {HASH_THREADS} x {ARGON2_MIB} = {limit} MiB", worst <= limit))
    lines.append(row("start-up to ready (median of 5)", f"{start:.1f} ms", "< 100 ms", start < 100))
    print(f"{'target':<44} {'measured':>30}  {'wanted':<34} verdict")
    print("\n".join(lines))
    print(f"\nraw results: {tmp}/ceiling.json, {tmp}/vs.json, {tmp}/signin.json, {wrk_log}")
    if args.postgres:
        # Without the wrk wrapper: postgres.py reads its own wrk's rusage.
        subprocess.run([sys.executable, os.path.join(HERE, "postgres.py"), "--runs", str(args.runs)], check=True,
                       env=plain_env)


if __name__ == "__main__":
    main()
