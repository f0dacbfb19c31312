"""jwtd on PostgreSQL: refresh and rotate against a throwaway local PostgreSQL, one jwtd instance
and two, with the CPU split between jwtd, PostgreSQL and wrk.

    python3 bench/postgres.py                 # release binary as it is (bench/run.py builds it)
    python3 bench/postgres.py --runs 1 --duration 5
    python3 bench/postgres.py --scenario rotate --instances 1   # one row of the table only
    python3 bench/run.py --postgres           # after run.py's own table

Starts PostgreSQL (the newest /usr/lib/postgresql/*/bin, or --pg-bin; as the `postgres` user when
run as root, as .ci/lib/postgres.sh does) in a temporary folder on a free loopback port, with its
defaults (fsync and synchronous commit on: a rotation is committed to disk before it is answered).
Then, for each scenario (refresh without rotation; rotate: rotation + blacklist, every token
presented once, ../shared/bench's rotate.lua) and for one and for two jwtd instances on one fresh
database: signs up `--users` accounts (64: PostgreSQL locks a user's row while rotating, so one
user's tokens would measure one user's serial rate), fills each instance's pool of refresh
tokens, warms up, then runs wrk `--runs` times.

Two instances are loaded by two wrk processes at once, one per instance, each with half the
connections (-t1 -c32 against -t2 -c64 for one instance), rather than through nginx: a proxy in
front would take a third share of the same two cores and its CPU would be neither jwtd's nor
PostgreSQL's, while the question is what PostgreSQL carries when several jwtd instances share it.
req/s is then the sum of both wrk processes, p99 the higher of the two.

CPU is read from /proc before and after each run: jwtd's and PostgreSQL's are their process trees
(the postmaster and every backend; the postmaster's cutime/cstime add backends that exit during the
run), wrk's is its own rusage (wait4). Printed per scenario: req/s, p99, CPU of each as a share of
one core (200 % = both cores of a 2-core machine), requests per jwtd CPU-second and per PostgreSQL
CPU-second, and the targets: >= 5,000 rotations/s with PostgreSQL on the same cores, and the scale
estimate README quotes: one active user refreshing every 15 minutes makes 1/900 rotations/s, so a
PostgreSQL primary carries (rotations per PostgreSQL CPU-second) x 900 active users per core."""
import argparse
import concurrent.futures
import contextlib
import glob
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("SHARED") or os.path.join(ROOT, "..", "shared")
LUA = os.path.join(SHARED, "bench", "lua")
JWTD = os.environ.get("JWTD_BIN") or os.path.join(ROOT, "target", "release", "jwtd")
PASSWORD = "bench-Passw0rd-7f3a"
SIGNING_KEY = "bench-signing-key-" + "x" * 40
SCENARIOS = {
    "refresh": ("refresh.lua", {"ROTATE_REFRESH_TOKENS": "false"}),
    "rotate": ("rotate.lua", {"ROTATE_REFRESH_TOKENS": "true", "BLACKLIST_AFTER_ROTATION": "true"}),
}
USERS_PER_15_MIN = 900  # seconds between one active user's refreshes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- process CPU

def tree(root):
    """root and every descendant alive now."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_s(roots):
    """CPU seconds (user + system) of the process trees under `roots`, with the roots' reaped children."""
    ticks = 0
    for root in roots:
        for p in tree(root):
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])
            if p == root:
                ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ PostgreSQL

class Postgres:
    def __init__(self, bin_dir):
        self.bin = bin_dir
        self.tmp = tempfile.mkdtemp(prefix="jwtd-bench-pg-")
        os.chmod(self.tmp, 0o755)
        self.data = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}"
        self.as_user = []
        if os.geteuid() == 0:  # initdb refuses root
            if subprocess.run(["id", "postgres"], capture_output=True).returncode:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
                               check=True)
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.tmp, "postgres")

    def start(self):
        run = lambda *a: subprocess.run([*self.as_user, *a], check=True, capture_output=True)  # noqa: E731
        run(os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", os.path.join(self.tmp, "server.log"), "-w",
            "-o", f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1", "start")
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())
        version = subprocess.run([os.path.join(self.bin, "postgres"), "--version"], capture_output=True, text=True)
        return version.stdout.strip()

    def psql(self, sql):
        subprocess.run([os.path.join(self.bin, "psql"), self.url + "/postgres", "-qc", sql], check=True,
                       capture_output=True)

    def stop(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            subprocess.run([*self.as_user, os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast", "-w",
                            "stop"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------ jwtd

@contextlib.contextmanager
def jwtd_instances(n, database_url, settings, tmp):
    procs, bases = [], []
    try:
        for i in range(n):  # one after the other: the first applies the migrations
            port = free_port()
            env = {**os.environ, "JWTD_ADDR": f"127.0.0.1:{port}", "JWTD_DATABASE_URL": database_url,
                   "JWTD_SIGNING_KEY": SIGNING_KEY, "JWTD_ACCESS_TOKEN_LIFETIME": "3600", "JWTD_LOGIN_RATE": "off",
                   "JWTD_SIGNUP_RATE": "off", **{"JWTD_" + k: v for k, v in settings.items()}}
            log = open(os.path.join(tmp, f"jwtd-{i}.log"), "ab")
            procs.append(subprocess.Popen([JWTD, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT))
            log.close()
            base = f"http://127.0.0.1:{port}"
            deadline = time.time() + 60
            while True:
                if procs[-1].poll() is not None or time.time() > deadline:
                    with open(os.path.join(tmp, f"jwtd-{i}.log"), errors="replace") as f:
                        sys.exit(f"jwtd instance {i} did not become ready:\n{f.read()[-3000:]}")
                try:
                    with urllib.request.urlopen(base + "/healthz", timeout=1):
                        break
                except (OSError, urllib.error.URLError):
                    time.sleep(0.05)
            bases.append(base)
        yield bases, [p.pid for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {}


def username(k):
    return f"bench_pg_{k}"


def sign_in(base, k):
    status, body = post(base + "/api/token/", {"username": username(k), "password": PASSWORD})
    if status != 200:
        sys.exit(f"sign-in of {username(k)} at {base} -> {status}")
    return body["refresh"]


def sign_up(base, users):
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        for status, _ in ex.map(lambda k: post(base + "/api/auth/signup/",
                                                {"username": username(k), "password": PASSWORD}), range(users)):
            if status not in (201, 400):
                sys.exit(f"sign-up -> {status}")


def top_up(base, pool, users, size):
    """Makes the rotation pool file `pool` hold `size` never-presented refresh tokens, signing in
    (spread over the users) for the missing ones: the tokens in flight when wrk stops are lost."""
    have = []
    if os.path.exists(pool):
        with open(pool) as f:
            have = [line.strip() for line in f if line.strip()]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        new = list(ex.map(lambda i: sign_in(base, i % users), range(len(have), size)))
    with open(pool, "w") as f:
        f.write("\n".join(have + new) + "\n")


# ------------------------------------------------------------------------------------- wrk

def wrk(base, script, env, threads, connections, seconds):
    """Starts wrk; returns a function that waits for it and returns its summary with `wrk_cpu_s`."""
    fd, out = tempfile.mkstemp(prefix="wrk-", suffix=".json")
    os.close(fd)
    e = {**os.environ, **env, "BENCH_JSON_OUT": out, "BENCH_THREADS": str(threads), "BENCH_PREFIX": ""}
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
           "-s", os.path.join(LUA, script), base]
    proc = subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait():
        text = proc.stdout.read().decode(errors="replace")
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        try:
            with open(out) as f:
                res = json.load(f)
        except (OSError, ValueError):
            sys.exit(f"wrk failed (rc={proc.returncode}):\n{text}")
        finally:
            os.unlink(out)
        res["wrk_cpu_s"] = usage.ru_utime + usage.ru_stime
        return res
    return wait


def one_run(bases, jwtd_pids, pg_pid, scenario, envs, connections, seconds):
    """One run of wrk against every instance at once; the run's totals."""
    threads = 2 if len(bases) == 1 else 1
    conns = max(1, connections // len(bases))
    before = (cpu_s(jwtd_pids), cpu_s([pg_pid]), time.perf_counter())
    waits = [wrk(b, SCENARIOS[scenario][0], e, threads, conns, seconds) for b, e in zip(bases, envs)]
    results = [w() for w in waits]
    wall = time.perf_counter() - before[2]
    jwtd_cpu, pg_cpu = cpu_s(jwtd_pids) - before[0], cpu_s([pg_pid]) - before[1]
    requests = sum(r["requests"] for r in results)
    return {
        "requests": requests, "rps": sum(r["rps"] for r in results),
        "p99_ms": max(r["lat_p99_us"] for r in results) / 1000,
        "non2xx": sum(r["errors_status"] for r in results),
        "socket_errors": sum(r["errors_connect"] + r["errors_read"] + r["errors_write"] + r["errors_timeout"]
                             for r in results),
        "starved": sum(r.get("starved", 0) for r in results),
        "wall_s": wall, "jwtd_cpu_s": jwtd_cpu, "pg_cpu_s": pg_cpu,
        "wrk_cpu_s": sum(r["wrk_cpu_s"] for r in results),
    }


def measure(pg, instances, scenario, args, tmp):
    db = f"jwtd_bench_{scenario}_{instances}"
    pg.psql(f"DROP DATABASE IF EXISTS {db}")
    pg.psql(f"CREATE DATABASE {db}")
    with jwtd_instances(instances, f"{pg.url}/{db}", SCENARIOS[scenario][1], tmp) as (bases, pids):
        conns = max(1, args.connections // instances)
        sign_up(bases[0], args.users)
        pools = [os.path.join(tmp, f"pool-{i}.txt") for i in range(instances)]
        envs = []
        for base, pool in zip(bases, pools):
            with contextlib.suppress(OSError):
                os.unlink(pool)
            if scenario == "rotate":
                envs.append({"BENCH_POOL": pool, "BENCH_POOL_OUT": pool, "BENCH_RECYCLE": "1"})
            else:
                envs.append({"BENCH_REFRESH": sign_in(base, 0)})

        def run(seconds):
            if scenario == "rotate":
                for base, pool in zip(bases, pools):
                    top_up(base, pool, args.users, 2 * conns)
            return one_run(bases, pids, pg.pid, scenario, envs, args.connections, seconds)
        print(f"  {scenario}, {instances} instance(s): {args.users} users; warm-up {args.warmup} s", file=sys.stderr,
              flush=True)
        run(args.warmup)
        runs = []
        for _ in range(args.runs):
            r = run(args.duration)
            print(f"  {scenario:<8} x{instances}  {r['rps']:>9,.0f} req/s  p99 {r['p99_ms']:6.2f} ms  "
                  f"jwtd {100 * r['jwtd_cpu_s'] / r['wall_s']:3.0f} %  "
                  f"postgres {100 * r['pg_cpu_s'] / r['wall_s']:3.0f} %  "
                  f"wrk {100 * r['wrk_cpu_s'] / r['wall_s']:3.0f} %  non2xx {r['non2xx']} (starved {r['starved']})  "
                  f"sockerr {r['socket_errors']}",
                  file=sys.stderr, flush=True)
            runs.append(r)
    med = lambda f: statistics.median(f(r) for r in runs)  # noqa: E731
    return {
        "scenario": scenario, "instances": instances, "runs": runs,
        "rps": med(lambda r: r["rps"]), "p99_ms": med(lambda r: r["p99_ms"]),
        "non2xx": sum(r["non2xx"] for r in runs) + sum(r["socket_errors"] for r in runs),
        "jwtd_pct": med(lambda r: 100 * r["jwtd_cpu_s"] / r["wall_s"]),
        "pg_pct": med(lambda r: 100 * r["pg_cpu_s"] / r["wall_s"]),
        "wrk_pct": med(lambda r: 100 * r["wrk_cpu_s"] / r["wall_s"]),
        "per_jwtd_cpu": med(lambda r: r["requests"] / r["jwtd_cpu_s"] if r["jwtd_cpu_s"] else 0),
        "per_pg_cpu": med(lambda r: r["requests"] / r["pg_cpu_s"] if r["pg_cpu_s"] else 0),
    }


def row(label, value, target, met):
    return f"{label:<44} {value:>30}  {target:<34} {'met' if met else 'NOT MET'}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per scenario and instance count (default 3)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of unrecorded load first (default 3)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections in all (default 64)")
    ap.add_argument("--users", type=int, default=64, help="accounts the refresh tokens spread over (default 64)")
    ap.add_argument("--pg-bin", help="PostgreSQL's server binaries (default: newest /usr/lib/postgresql/*/bin)")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), action="append",
                    help="only this scenario (repeatable; default: all)")
    ap.add_argument("--instances", type=int, choices=(1, 2), action="append",
                    help="only this many jwtd instances (repeatable; default: 1 and 2)")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing (apt-get install wrk)")
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(re.sub(r"\D", "", p) or 0))
    pg_bin = args.pg_bin or (bins[-1] if bins else None)
    if not pg_bin or not os.path.exists(os.path.join(pg_bin, "initdb")):
        sys.exit("PostgreSQL's server binaries are missing (apt-get install postgresql, or --pg-bin)")
    tmp = tempfile.mkdtemp(prefix="jwtd-bench-pg-run-")
    pg = Postgres(pg_bin)
    try:
        version = pg.start()
        print(f"{version} on 127.0.0.1:{pg.port}, data in {pg.data}", file=sys.stderr, flush=True)
        results = [measure(pg, n, s, args, tmp) for n in (args.instances or (1, 2)) for s in SCENARIOS
                   if s in (args.scenario or SCENARIOS)]
    finally:
        pg.stop()
    shutil.rmtree(tmp, ignore_errors=True)  # kept, with jwtd's logs, when a run failed
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print()
    print(f"# PostgreSQL: {version} (defaults, fsync on), jwtd and wrk on the same {os.cpu_count()} cores; "
          f"{args.connections} connections in all, {args.users} users; medians of {args.runs} runs of "
          f"{args.duration} s; {time.strftime('%Y-%m-%d %H:%M')}; load average {load} at the end")
    print(f"{'scenario':<9} {'jwtd':>4} {'req/s':>9} {'p99 ms':>7} {'jwtd CPU':>8} {'pg CPU':>7} {'wrk CPU':>8} "
          f"{'req/jwtd-cpu-s':>14} {'req/pg-cpu-s':>12} {'errors':>6}")
    for r in results:
        print(f"{r['scenario']:<9} {r['instances']:>4} {r['rps']:>9,.0f} {r['p99_ms']:>7.2f} {r['jwtd_pct']:>7.0f}% "
              f"{r['pg_pct']:>6.0f}% {r['wrk_pct']:>7.0f}% {r['per_jwtd_cpu']:>14,.0f} {r['per_pg_cpu']:>12,.0f} "
              f"{r['non2xx']:>6}")
    print("CPU = CPU seconds per wall second (200 % = two cores); jwtd CPU sums both instances; "
          "errors = non-2xx answers and socket errors (must be 0)")
    print()
    lines = []
    for r in (x for x in results if x["scenario"] == "rotate"):
        lines.append(row(f"rotate, {r['instances']} jwtd instance(s): rotations/s", f"{r['rps']:,.0f}", ">= 5,000",
                         r["rps"] >= 5000 and r["non2xx"] == 0))
    rot = [x for x in results if x["scenario"] == "rotate"]
    per_pg = min((x["per_pg_cpu"] for x in rot), default=0)
    print(f"{'target':<44} {'measured':>30}  {'wanted':<34} verdict")
    print("\n".join(lines))
    print()
    if rot:
        print(f"scale estimate: {per_pg:,.0f} rotations per PostgreSQL CPU-second (the lower of one and two "
              f"instances) x {USERS_PER_15_MIN} s = {per_pg * USERS_PER_15_MIN:,.0f} active users per PostgreSQL "
              f"core at one refresh per 15 minutes")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"postgres": version, "load_average": load, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
