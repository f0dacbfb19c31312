"""jwtd's benchmark against its ceilings and the reference, on this machine, in one sitting.

    python3 bench/run.py                # release build, then every measurement (about 25 minutes)
    python3 bench/run.py --runs 1 --no-build

Builds release (jwtd and bench/ceiling), then:
  1. the hello-world ceiling: bench/ceiling's bare axum server under ../shared/bench's healthz scenario;
  2. argon2id's ceiling: hashes per second at jwtd's parameters on every core;
  3. `../shared/bench/bench.py --vs jwtd simplejwt:2`: every scenario, jwtd and the reference run
     alternately;
  4. sign-in alone, and /api/me/ and refresh latency while a sign-in flood saturates the hash pool;
  5. start-up to ready (first /healthz answer), on a fresh database;
and prints one table: req/s, p99, RSS, the ratios the performance targets name, and whether each
target is met. Needs wrk and the reference's virtualenv (../shared/reference/simplejwt/setup.sh)."""
import argparse
import json
import os
import re
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
    return f"{label:<44} {value:>28}  {target:<34} {'met' if met else 'NOT MET'}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per scenario and target (default 3)")
    ap.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    ap.add_argument("--flood-seconds", type=int, default=10)
    args = ap.parse_args()
    os.environ.setdefault("JWTD_BIN", JWTD)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "jwtd", "-p", "jwtd-bench-ceiling"],
                       cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="jwtd-bench-")
    ceiling = hello_world(args.runs, tmp)
    hashes = argon2_rate()
    vs = bench_py(["--vs", "jwtd", "simplejwt:2", "--scenarios", ",".join(SCENARIOS), "--runs", str(args.runs)],
                  os.path.join(tmp, "vs.json"))
    # Sign-in alone too: in the alternating runs, the reference is still working off its queue of
    # PBKDF2 sign-ins (p50 of seconds) when jwtd's turn starts, and takes CPU from the hash pool.
    alone = bench_py(["--target", "jwtd", "--scenarios", "signin", "--runs", str(args.runs)],
                     os.path.join(tmp, "signin.json"))["results"][0]
    flood = under_signin_flood(args.flood_seconds)
    start = startup_ms()

    res = {(r["target"], r["scenario"]): r for r in vs["results"]}
    ref_target = next(t for t, _ in res if t != "jwtd")
    ceil = ceiling["rps_median"]
    print()
    print(f"# {vs['machine']['nproc']} x {vs['machine']['cpu_model']}; wrk -t2 -c64 (signin -c16); "
          f"medians of {args.runs} runs; {time.strftime('%Y-%m-%d')}")
    print(f"hello-world ceiling: {ceil:,.0f} req/s (p99 {ceiling['p99_ms_median']:.2f} ms, "
          f"RSS {ceiling['peak_rss_mib']:.1f} MiB); argon2id at m=19 MiB t=2 on all cores: {hashes:.1f} hashes/s")
    print()
    print(f"{'scenario':<9} {'jwtd req/s':>11} {'p99 ms':>7} {'RSS MiB':>8} {'ref req/s':>10} {'ref p99':>8} "
          f"{'x ref':>7} {'% ceiling':>9}")
    for s in SCENARIOS:
        j, r = res[("jwtd", s)], res[(ref_target, s)]
        print(f"{s:<9} {j['rps_median']:>11,.0f} {j['p99_ms_median']:>7.2f} {j['peak_rss_mib']:>8.1f} "
              f"{r['rps_median']:>10,.1f} {r['p99_ms_median']:>8.1f} {j['rps_median'] / r['rps_median']:>7.1f} "
              f"{100 * j['rps_median'] / ceil:>8.1f}%")
    print()
    lines = []
    for s in ("me", "verify"):
        j = res[("jwtd", s)]
        lines.append(row(f"{s}: >= 60 % of the ceiling", f"{100 * j['rps_median'] / ceil:.1f} %", ">= 60 %",
                         j["rps_median"] >= 0.6 * ceil))
        lines.append(row(f"{s}: p99", f"{j['p99_ms_median']:.2f} ms", "< 5 ms", j["p99_ms_median"] < 5))
    j = res[("jwtd", "refresh")]
    lines.append(row("refresh: >= 40 % of the ceiling", f"{100 * j['rps_median'] / ceil:.1f} %", ">= 40 %",
                     j["rps_median"] >= 0.4 * ceil))
    lines.append(row("refresh: p99", f"{j['p99_ms_median']:.2f} ms", "< 5 ms", j["p99_ms_median"] < 5))
    j, r = res[("jwtd", "rotate")], res[(ref_target, "rotate")]
    lines.append(row("rotate: req/s", f"{j['rps_median']:,.0f}", ">= 15,000", j["rps_median"] >= 15000))
    lines.append(row("rotate: x reference", f"{j['rps_median'] / r['rps_median']:.1f}", ">= 50",
                     j["rps_median"] >= 50 * r["rps_median"]))
    lines.append(row("rotate: p99", f"{j['p99_ms_median']:.2f} ms", "< 10 ms", j["p99_ms_median"] < 10))
    lines.append(row("signin (alone): share of argon2id's ceiling",
                     f"{alone['rps_median']:.1f}/s = {100 * alone['rps_median'] / hashes:.1f} %", ">= 85 %",
                     alone["rps_median"] >= 0.85 * hashes))
    for s in ("me", "refresh"):
        p99 = flood[s][0]
        lines.append(row(f"{s} p99 during a sign-in flood", f"{p99:.2f} ms ({flood[s][1]:,.0f} req/s)", "< 20 ms",
                         p99 < 20))
    j, r = res[("jwtd", "mixed")], res[(ref_target, "mixed")]
    lines.append(row("mixed: x reference", f"{j['rps_median'] / r['rps_median']:.1f}", ">= 50",
                     j["rps_median"] >= 50 * r["rps_median"]))
    worst = max([res[("jwtd", s)]["peak_rss_mib"] for s in SCENARIOS] + [alone["peak_rss_mib"]])
    lines.append(row("RSS, highest of every scenario", f"{worst:.1f} MiB", "< 50 MiB", worst < 50))
    lines.append(row("start-up to ready (median of 5)", f"{start:.1f} ms", "< 100 ms", start < 100))
    print(f"{'target':<44} {'measured':>28}  {'wanted':<34} verdict")
    print("\n".join(lines))
    print(f"\nraw results: {tmp}/ceiling.json, {tmp}/vs.json")


if __name__ == "__main__":
    main()
