#!/usr/bin/env python3
"""Interleaved A/B of two switchboard binaries on this machine, with the CPU each thread spent
per webhook (or per delivery), read from /proc — no profiler in the way. Hosts are noisy:
compare runs side by side, and the writer thread's µs — the same work in both binaries unless
the store changed — tells a slow moment of the host from a slow binary.

  ingest  a daemon with no routes (bench/run.py's configuration); wrk -c32 for 2 s of warm-up,
          then 8 s measured: req/s and CPU µs per stored webhook.
  drain   every event routed to a local HTTP receiver (bench/run.py's ingest+http
          configuration); wrk -c32 for 6 s, then up to 3 s with no load (until the backlog is
          empty): deliveries/s and CPU µs per delivery while it drains.

Usage: python3 bench/ab.py [--runs 3] [--payload jivo|envybox] [--mode ingest|drain] A B
Copy the binaries aside first (cp target/release/switchboard /tmp/sb-a): a build between runs
would replace them. Needs wrk and target/release/bench-peer (bench/run.py builds both).
"""

import argparse
import os
import tempfile
import time
from collections import Counter

from run import PAYLOADS, TARGET, Server, ensure_wrk, free_port, pending, switchboard_config, wait_until, wrk

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """User + system ticks of each thread of `pid`, summed by thread name."""
    ticks = Counter()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/task/{task}/comm") as comm:
                ticks[comm.read().strip()] += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError):
            # A short-lived thread (a blocking-pool worker) ended between listing and reading.
            continue
    return ticks


def one(binary, payload, mode, id_base):
    """One daemon through one measurement: (rate, {thread: µs per unit})."""
    with tempfile.TemporaryDirectory() as directory:
        hooks, admin = free_port(), free_port()
        receiver = receiver_port = None
        if mode == "drain":
            receiver_port = free_port()
            receiver = Server([os.path.join(TARGET, "bench-peer"), "receiver", "--listen",
                               f"127.0.0.1:{receiver_port}"], f"http://127.0.0.1:{receiver_port}/stats")
        config = switchboard_config(directory, hooks, admin, receiver_port)
        server = Server([binary, "run", "--config", config], f"http://127.0.0.1:{admin}/readyz", env={"RUST_LOG": "info"},
                        cwd=directory)
        url = f"http://127.0.0.1:{hooks}/hooks/{payload[0]}"
        try:
            if mode == "ingest":
                wrk(url, payload, 2, 32, id_base)
                before = cpu_ticks(server.proc.pid)
                result = wrk(url, payload, 8, 32, id_base + 500_000_000)
                after = cpu_ticks(server.proc.pid)
                units, rate = result["requests"], result["rps"]
            else:
                wrk(url, payload, 6, 32, id_base)
                db = os.path.join(directory, "data/switchboard.db")
                left, started, before = pending(db), time.monotonic(), cpu_ticks(server.proc.pid)
                # Up to 3 s, less if the backlog empties first (its rate would be understated).
                wait_until(lambda: pending(db) == 0, 3, step=0.05)
                after, units = cpu_ticks(server.proc.pid), left - pending(db)
                rate = units / (time.monotonic() - started)
        finally:
            server.stop()
            if receiver:
                receiver.stop()
    per_unit = {name: (after[name] - before[name]) / TICKS_PER_S * 1e6 / max(units, 1) for name in after}
    return rate, {name: us for name, us in per_unit.items() if us >= 0.5}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--payload", choices=sorted(PAYLOADS), default="jivo")
    parser.add_argument("--mode", choices=["ingest", "drain"], default="ingest")
    parser.add_argument("a")
    parser.add_argument("b")
    args = parser.parse_args()
    ensure_wrk()
    unit = "req/s" if args.mode == "ingest" else "deliveries/s"
    id_base = int(time.time()) % 100_000 * 1_000_000_000
    for _ in range(args.runs):
        for label, binary in (("A", args.a), ("B", args.b)):
            id_base += 1_000_000_000
            rate, per_unit = one(os.path.abspath(binary), PAYLOADS[args.payload], args.mode, id_base)
            threads = "  ".join(f"{name} {us:.1f}" for name, us in sorted(per_unit.items()))
            print(f"{label} {rate:8.0f} {unit}  {threads}  | total {sum(per_unit.values()):.1f} µs each", flush=True)


if __name__ == "__main__":
    main()
