#!/usr/bin/env python3
"""Switchboard against the ceiling of this machine, in one run, with one load generator (wrk).

Servers, each on loopback, each fed the same two payloads (a 2 KB Jivo offline message as JSON,
an Envybox missed-call form), each body with a fresh id so nothing is a duplicate:

  baseline     bench-peer baseline: parse the body, answer 200, keep nothing (the ceiling)
  durable      bench-peer durable: the baseline, then the body appended to a file and answered
               once the file is synced, with group commit — the ceiling for any receiver that
               keeps what it acknowledges; the gap to the baseline is this machine's disk
  ingest       switchboard, SQLite store, no routes: the vendor's 200 comes after the event is
               fsynced (group commit)
  ingest+http  switchboard routing every event to an HTTP output; the receiver (bench-peer
               receiver) runs locally too, and the run waits until everything is delivered

Reported: requests/s at saturation (wrk -c CONNECTIONS), p50/p99 latency there and at a fixed
2,000 req/s, end-to-end delivered/s, idle and peak RSS, start-up time to /readyz. For
ingest+http, whether delivery keeps up when webhooks come at a steady rate (--e2e-rates, open
loop): each delivery's lag from the webhook's arrival to its answer from the receiver, and how
long the queue takes to drain after the load stops. For the servers that sync before they
answer (durable, ingest, ingest+http), the group commit at saturation: writes per commit,
commits/s and the time each took — such a server's requests/s is their product, and at a fixed
number of connections the commits/s is close to what the disk's sync allows.

Saturation is wrk's (closed loop: the most a server answers). The fixed rate is `bench-peer
load` (bench/peers/src/load.rs), an open-loop generator: request i is sent at i/2000 s whatever
the server did before, and waiting for a free connection counts in its latency. Debian's wrk 4
has no such mode; its per-connection delay paces a slow server down and flatters its latency.
Each fixed-rate run starts with WARMUP seconds at the same rate that are not counted.

The ratios to the baseline are reported twice: from that single pass, where each server runs
minutes after the one before, and from ROUNDS interleaved rounds (baseline, durable, ingest,
again and again, saturation only): their median is the figure to quote, since a shared host's
speed drifts over minutes and the single pass's ratio drifts with it.

Usage: python3 bench/run.py [--duration 10] [--connections 32] [--e2e-rates 2000,5000] [--rounds 3]
                            [--json out.json]
Needs wrk (installed with apt-get when missing and running as root) and builds release binaries.
The machine's record includes its disk's sync rate (bench/disk.py), measured before the servers.
"""

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import disk

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "target", "release")
PAYLOADS = {
    "jivo": ("jivo", os.path.join(ROOT, "bench/payloads/jivo_offline_message.json"), "application/json"),
    "envybox": ("envybox", os.path.join(ROOT, "bench/payloads/envybox_missed_call.form"),
                "application/x-www-form-urlencoded"),
}
FIXED_RATE = 2000
# Steady rates at which ingest+http is checked for keeping up (besides saturation).
E2E_RATES = (2000, 5000)
WARMUP = 3


def ensure_wrk():
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        sys.exit("wrk is missing: apt-get install wrk")
    print("installing wrk …", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def build():
    print("building release binaries …", flush=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "switchboard", "-p", "switchboard-bench-peers"],
                   cwd=ROOT, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


def wait_until(check, timeout, step=0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except OSError:
            pass
        time.sleep(step)
    return False


class Server:
    def __init__(self, args, ready_url, env=None, cwd=None):
        started = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})}, cwd=cwd)
        if not wait_until(lambda: get(ready_url)[0] == 200, 30):
            self.stop()
            raise RuntimeError(f"{args[0]} did not become ready")
        self.startup_ms = (time.monotonic() - started) * 1000
        self.commits_url = None  # where `commit_counts` reads a durable server's group commit

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wrk(url, payload, duration, connections, id_base):
    _, path, content_type = payload
    env = {**os.environ, "PAYLOAD": path, "CONTENT_TYPE": content_type, "ID_BASE": str(id_base)}
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s",
                          "-s", os.path.join(ROOT, "bench/post.lua"), url],
                         capture_output=True, text=True, env=env, check=True).stdout

    def latency(pct):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": latency(50), "p99_ms": latency(99),
        "requests": total,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def fixed_rate(url, payload, duration, id_base, rate=FIXED_RATE):
    """Latency at `rate` from the open-loop generator, after an uncounted warm-up."""
    _, path, content_type = payload

    def load(seconds, base):
        out = subprocess.run([os.path.join(TARGET, "bench-peer"), "load", "--url", url, "--payload", path,
                              "--content-type", content_type, "--rate", str(rate), "--duration", str(seconds),
                              "--connections", "64", "--id-base", str(base)],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)

    load(WARMUP, id_base)
    result = load(duration, id_base + 1_000_000_000)
    return {
        "rps": result["rate"], "p50_ms": result["p50_ms"], "p90_ms": result["p90_ms"], "p99_ms": result["p99_ms"],
        "p999_ms": result["p999_ms"], "max_ms": result["max_ms"], "requests": result["sent"],
        "non_2xx": result["non_2xx"], "socket_errors": result["errors"],
    }


def base_config(hooks, admin):
    """What every benchmarked daemon shares: loopback listeners, SQLite, the shipped plugins."""
    return f"""
[server]
listen = "127.0.0.1:{hooks}"
admin_listen = "127.0.0.1:{admin}"
[storage]
url = "sqlite://data/switchboard.db"
[paths]
plugins = "{ROOT}/plugins"
"""


def switchboard_config(directory, hooks, admin, receiver=None):
    text = base_config(hooks, admin)
    if receiver:
        text += f"""
[delivery]
concurrency = 32
[outputs.crm]
type = "http"
url = "http://127.0.0.1:{receiver}/in"
max_in_flight = 32
[[route]]
name = "everything"
to = ["crm"]
template = "generic"
"""
    path = os.path.join(directory, "config.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def count(db, sql):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as connection:
        return connection.execute(sql).fetchone()[0]


def pending(db):
    return count(db, "SELECT count(*) FROM deliveries WHERE state = 'pending'")


def delivery_lag(db, since_ms):
    """From each webhook's arrival to the receiver's answer to its first attempt, for the
    deliveries created since `since_ms`."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as connection:
        lags = sorted(row[0] for row in connection.execute(
            "SELECT a.started_at + a.duration_ms - d.created_at FROM deliveries d "
            "JOIN attempts a ON a.delivery_id = d.id AND a.number = 1 WHERE d.created_at >= ?", (since_ms,)))
    if not lags:
        return {"deliveries": 0}
    pick = lambda q: lags[min(len(lags) - 1, int(len(lags) * q))]
    return {"deliveries": len(lags), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": lags[-1]}


def keeps_up(url, payload, duration, id_base, db, rate):
    """An open-loop load at `rate` with every event routed: latency, delivery lag, drain time."""
    since_ms = int(time.time() * 1000)
    fixed = fixed_rate(url, payload, duration, id_base, rate)
    ended = time.monotonic()
    drained = wait_until(lambda: pending(db) == 0, 300, step=0.05)
    fixed["e2e"] = {"seconds_to_drain_after_load": round(time.monotonic() - ended, 2), "drained": drained,
                    "lag": delivery_lag(db, since_ms)}
    return fixed


def start_server(name, directory):
    """Starts one of the servers in `directory`: (server, hooks port, receiver or None, receiver port)."""
    hooks, admin = free_port(), free_port()
    receiver = receiver_port = None
    if name in ("baseline", "durable"):
        log = ["--log", os.path.join(directory, "bodies.log")] if name == "durable" else []
        server = Server([os.path.join(TARGET, "bench-peer"), name, "--listen", f"127.0.0.1:{hooks}", *log],
                        f"http://127.0.0.1:{hooks}/healthz", env={})
        server.commits_url = f"http://127.0.0.1:{hooks}/stats" if name == "durable" else None
        return server, hooks, None, None
    if name == "ingest+http":
        receiver_port = free_port()
        receiver = Server([os.path.join(TARGET, "bench-peer"), "receiver", "--listen",
                           f"127.0.0.1:{receiver_port}"], f"http://127.0.0.1:{receiver_port}/stats")
    config = switchboard_config(directory, hooks, admin, receiver_port)
    server = Server([os.path.join(TARGET, "switchboard"), "run", "--config", config],
                    f"http://127.0.0.1:{admin}/readyz", env={"RUST_LOG": "info"}, cwd=directory)
    server.commits_url = f"http://127.0.0.1:{admin}/metrics"
    return server, hooks, receiver, receiver_port


def commit_counts(server):
    """(writes, commits, seconds) so far: the durable peer's syncs, or Switchboard's store
    commits from its `switchboard_store_commit_*` metrics; None for a server that keeps nothing."""
    if not server.commits_url:
        return None
    body = get(server.commits_url)[1].decode()
    if server.commits_url.endswith("/stats"):
        stats = json.loads(body)
        return stats["bodies"], stats["syncs"], stats["seconds"]
    series = dict(line.rsplit(" ", 1) for line in body.splitlines() if line.startswith("switchboard_store_commit_"))
    value = lambda name: float(series.get(name, 0))
    return (value("switchboard_store_commit_writes_sum"), value("switchboard_store_commit_writes_count"),
            value("switchboard_store_commit_duration_seconds_sum"))


def group_commit(before, after, seconds):
    """What the writes between two `commit_counts` say: the group commit that clocks a server
    whose answers wait for the disk. Requests/s = commits/s × writes per commit."""
    if before is None or after is None or after[1] == before[1]:
        return None
    writes, commits, busy = (a - b for a, b in zip(after, before))
    return {"writes_per_commit": round(writes / commits, 1), "commits_per_s": round(commits / seconds),
            "commit_ms": round(busy / commits * 1000, 3)}


def run_server(name, duration, connections, e2e_rates=E2E_RATES):
    """One server through every payload: saturation, then the fixed rate."""
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        peer = name in ("baseline", "durable")
        server, hooks, receiver, receiver_port = start_server(name, directory)
        try:
            time.sleep(2)
            results["startup_ms"] = round(server.startup_ms, 1)
            results["idle_rss_mib"] = round(rss_kib(server.proc.pid) / 1024, 1)
            id_base = 0
            for key, payload in PAYLOADS.items():
                url = f"http://127.0.0.1:{hooks}/hooks/{payload[0]}"
                id_base += 10_000_000_000
                db = os.path.join(directory, "data/switchboard.db")
                before = count(db, "SELECT count(*) FROM deliveries WHERE state = 'delivered'") if receiver else 0
                started, commits = time.monotonic(), commit_counts(server)
                saturated = wrk(url, payload, duration, connections, id_base)
                saturated["group_commit"] = group_commit(commits, commit_counts(server), duration)
                if receiver:
                    accepted = count(db, "SELECT count(*) FROM deliveries") - before
                    drained = wait_until(lambda: pending(db) == 0, 300, step=0.2)
                    elapsed = time.monotonic() - started
                    delivered = count(db, "SELECT count(*) FROM deliveries WHERE state = 'delivered'") - before
                    received = json.loads(get(f"http://127.0.0.1:{receiver_port}/stats")[1])
                    saturated["e2e"] = {
                        "deliveries": accepted, "delivered": delivered, "drained": drained,
                        "delivered_per_s": round(delivered / elapsed, 1),
                        "seconds_to_drain_after_load": round(elapsed - duration, 1),
                        "receiver": received,
                    }
                id_base += 10_000_000_000
                # The queue is drained: the fixed-rate run starts from rest.
                fixed = keeps_up(url, payload, duration, id_base, db, FIXED_RATE) if receiver else \
                    fixed_rate(url, payload, duration, id_base)
                results[key] = {"saturated": saturated, f"at_{FIXED_RATE}": fixed}
                print(f"  {name:<12} {key:<8} {saturated['rps']:>9.0f} req/s  p50 {saturated['p50_ms']:.2f} ms  "
                      f"p99 {saturated['p99_ms']:.2f} ms | at {fixed['rps']:.0f} req/s: p50 {fixed['p50_ms']:.2f} ms "
                      f"p99 {fixed['p99_ms']:.2f} ms" + (f" | e2e {saturated['e2e']['delivered_per_s']} delivered/s"
                                                          if receiver else ""), flush=True)
                if saturated["group_commit"]:
                    grouped = saturated["group_commit"]
                    print(f"  {name:<12} {key:<8} group commit: {grouped['writes_per_commit']} writes per commit, "
                          f"{grouped['commits_per_s']} commits/s, {grouped['commit_ms']} ms each", flush=True)
                for rate in e2e_rates if receiver else ():
                    id_base += 10_000_000_000
                    steady = fixed if rate == FIXED_RATE else keeps_up(url, payload, duration, id_base, db, rate)
                    results[key][f"e2e_at_{rate}"] = steady
                    lag = steady["e2e"]["lag"]
                    print(f"  {name:<12} {key:<8} steady {steady['rps']:.0f} req/s: delivery lag p50 "
                          f"{lag.get('p50_ms')} ms p99 {lag.get('p99_ms')} ms max {lag.get('max_ms')} ms over "
                          f"{lag['deliveries']} deliveries; drained {steady['e2e']['seconds_to_drain_after_load']} s "
                          f"after the load", flush=True)
            results["peak_rss_mib"] = round(rss_kib(server.proc.pid, "VmHWM") / 1024, 1)
            if not peer:
                db = os.path.join(directory, "data/switchboard.db")
                results["events_stored"] = count(db, "SELECT count(*) FROM events")
        finally:
            server.stop()
            if receiver:
                receiver.stop()
    return results


RATIO_SERVERS = ("baseline", "durable", "ingest")


def interleaved_ratios(rounds, duration, connections):
    """The three servers' saturation in turn, `rounds` times, each on a fresh server after a
    warm-up: a host whose speed drifts during the run (a shared VM's does, by 10-20% over
    minutes) then slows each round's servers alike, and the median of the rounds' ratios is the
    ratio. The single pass above measures each server minutes apart. Each round starts one
    server later in the order, so that no server always follows the same one."""
    rps = {key: {name: [] for name in RATIO_SERVERS} for key in PAYLOADS}
    id_base = 500_000_000_000
    for round_ in range(rounds):
        shift = round_ % len(RATIO_SERVERS)
        for name in RATIO_SERVERS[shift:] + RATIO_SERVERS[:shift]:
            with tempfile.TemporaryDirectory() as directory:
                server, hooks = start_server(name, directory)[:2]
                try:
                    for key, payload in PAYLOADS.items():
                        url = f"http://127.0.0.1:{hooks}/hooks/{payload[0]}"
                        id_base += 10_000_000_000
                        wrk(url, payload, WARMUP, connections, id_base)
                        rps[key][name].append(wrk(url, payload, duration, connections, id_base + 5_000_000_000)["rps"])
                finally:
                    server.stop()
    return rps


def arguments(doc, add):
    """The command line of a bench script: its own options (`add`), then --json and --no-build."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add(parser)
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    return parser.parse_args()


def main():
    def options(parser):
        parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
        parser.add_argument("--connections", type=int, default=32, help="connections at saturation")
        parser.add_argument("--e2e-rates", default=",".join(map(str, E2E_RATES)),
                            help="steady rates (req/s, comma-separated) at which delivery is checked for keeping up")
        parser.add_argument("--rounds", type=int, default=3,
                            help="interleaved rounds of baseline, durable and ingest for the ratios (0: none)")

    args = arguments(__doc__, options)
    e2e_rates = [int(rate) for rate in args.e2e_rates.split(",") if rate.strip()]
    ensure_wrk()
    if not args.no_build:
        build()
    machine = {
        "cpus": os.cpu_count(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "kernel": os.uname().release,
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0],
        # What clocks the durable servers (bench/disk.py): one sync at a time, and four at once.
        "disk_syncs": [disk.syncs(threads) for threads in (1, 4)],
    }
    print(f"machine: {machine}", flush=True)
    results = {"machine": machine, "duration_s": args.duration, "connections": args.connections}
    for name in ["baseline", "durable", "ingest", "ingest+http"]:
        results[name] = run_server(name, args.duration, args.connections, e2e_rates)
    for key in PAYLOADS:
        rps = {name: results[name][key]["saturated"]["rps"] for name in RATIO_SERVERS}
        results[f"ingest_vs_baseline_{key}"] = round(rps["ingest"] / rps["baseline"], 3)
        results[f"ingest_vs_durable_{key}"] = round(rps["ingest"] / rps["durable"], 3)
        results[f"durable_vs_baseline_{key}"] = round(rps["durable"] / rps["baseline"], 3)
        print(f"single pass, durable ingest / baseline ({key}): {rps['ingest'] / rps['baseline']:.0%}  "
              f"(the durable ceiling: {rps['durable'] / rps['baseline']:.0%} of the baseline; "
              f"ingest is {rps['ingest'] / rps['durable']:.0%} of it)")
    if args.rounds:
        print(f"interleaved: {args.rounds} rounds of baseline, durable, ingest ({args.duration} s each) …", flush=True)
        rounds = interleaved_ratios(args.rounds, args.duration, args.connections)
        results["interleaved"] = rounds
        for key, rps in rounds.items():
            ratios = [i / b for i, b in zip(rps["ingest"], rps["baseline"])]
            ceiling = [d / b for d, b in zip(rps["durable"], rps["baseline"])]
            results[f"interleaved_ingest_vs_baseline_{key}"] = round(statistics.median(ratios), 3)
            results[f"interleaved_durable_vs_baseline_{key}"] = round(statistics.median(ceiling), 3)
            print(f"interleaved, durable ingest / baseline ({key}): median {statistics.median(ratios):.0%} "
                  f"(rounds: {', '.join(f'{r:.0%}' for r in ratios)}; req/s baseline "
                  f"{'/'.join(f'{x:.0f}' for x in rps['baseline'])}, durable "
                  f"{'/'.join(f'{x:.0f}' for x in rps['durable'])}, ingest {'/'.join(f'{x:.0f}' for x in rps['ingest'])}); "
                  f"durable ceiling median {statistics.median(ceiling):.0%}", flush=True)
    for name in ["ingest", "ingest+http"]:
        r = results[name]
        print(f"{name}: start-up {r['startup_ms']} ms, idle RSS {r['idle_rss_mib']} MiB, peak RSS {r['peak_rss_mib']} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
