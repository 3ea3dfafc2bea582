#!/usr/bin/env python3
"""Soak and fault test, bounded in time, loopback only.

Steady webhook load for several minutes while the HTTP receiver flaps (503 for 10 s of every
30 s), the Bot API server answers 429 storms (8 s of every 30 s) and the daemon is restarted
twice — once gracefully (SIGTERM), once killed (SIGKILL). Then the load stops, the queue drains,
and every webhook the daemon acknowledged is checked: stored, and each of its deliveries
delivered or dead-lettered with an answer. Memory is sampled every 5 s.

One webhook in ten is a Jivo call instead: `start`, sometimes `agent_connected`, then `end`,
each a webhook of its own, so a call may straddle a restart. Every `end` whose `start` was
acknowledged must be classified by what the store kept of its call: `call.missed` without the
answer, `call.finished` with it.

Expected: zero lost, zero dead letters, zero calls misclassified, memory flat; duplicates only
from the SIGKILL (an attempt in flight whose outcome was not recorded is sent again:
at-least-once).

Usage: python3 bench/soak.py [--minutes 3] [--rate 60] [--json soak.json]
"""

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import (  # noqa: E402
    ROOT, TARGET, Server, arguments, base_config, build, free_port, get, pending, rss_kib, wait_until,
)

JIVO = open(os.path.join(ROOT, "bench/payloads/jivo_offline_message.json")).read().strip()
ENVYBOX = open(os.path.join(ROOT, "bench/payloads/envybox_missed_call.form")).read().strip()


class Load:
    """Posts webhooks at a steady rate from several threads, each with its own id; records
    which ones the daemon acknowledged (2xx) and how many it did not (refused, or down)."""

    def __init__(self, port, rate, threads=4):
        self.port, self.rate, self.threads = port, rate, threads
        self.accepted, self.failed = [], 0
        # (end's event id, the kind it must have) for every call whose start and end were acknowledged
        self.calls = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def post(self, connection, path, body, kind):
        """One webhook; returns the connection to go on with and the event id if acknowledged."""
        event_id = None
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            connection.request("POST", path, body.encode(), {"content-type": kind})
            response = connection.getresponse()
            response.read()
            if 200 <= response.status < 300:
                event_id = response.getheader("x-switchboard-event-id")
        except (OSError, http.client.HTTPException):
            # The daemon is restarting: a vendor would retry later; this is not "accepted".
            connection = None
        with self.lock:
            if event_id:
                self.accepted.append(event_id)
            else:
                self.failed += 1
        return connection, event_id

    def worker(self, index):
        interval = self.threads / self.rate
        connection, n = None, 0
        next_at = time.monotonic()
        call = None  # the call in progress: (chat, statuses still to send, start acknowledged, answered)
        while not self.stop.is_set():
            n += 1
            unique = 90_000_000_000 + index * 100_000_000 + n
            if call is None and n % 10 == 3:
                answered = n % 20 == 3
                statuses = ["start", "agent_connected", "end"] if answered else ["start", "end"]
                call = (unique, statuses, False, answered)
            if call is not None:
                chat, statuses, started, answered = call
                status = statuses.pop(0)
                body = json.dumps({"event_name": "call_event", "widget_id": "soak", "chat_id": chat,
                                   "call": {"type": "incoming", "phone": "+79990001122", "status": status}})
                connection, event_id = self.post(connection, "/hooks/jivo", body, "application/json")
                started = started or (status == "start" and event_id is not None)
                if status == "end" and started and event_id:
                    with self.lock:
                        self.calls.append((event_id, "call.finished" if answered else "call.missed"))
                call = (chat, statuses, started, answered) if statuses else None
            # One in five is an Envybox missed call (routed to Telegram too), the rest Jivo offline messages.
            elif n % 5 == 0:
                body = ENVYBOX.replace("__ID__", str(unique))
                connection, _ = self.post(connection, "/hooks/envybox", body, "application/x-www-form-urlencoded")
            else:
                connection, _ = self.post(connection, "/hooks/jivo", JIVO.replace("__ID__", str(unique)), "application/json")
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def start(self):
        self.handles = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(self.threads)]
        for handle in self.handles:
            handle.start()

    def finish(self):
        self.stop.set()
        for handle in self.handles:
            handle.join()


def config(directory, hooks, admin, receiver, telegram):
    path = os.path.join(directory, "config.toml")
    with open(path, "w") as f:
        f.write(base_config(hooks, admin) + f"""
[delivery]
retry_schedule_secs = [1, 2, 5]
shutdown_grace_secs = 5
[outputs.crm]
type = "http"
url = "http://127.0.0.1:{receiver}/in"
[outputs.tg]
type = "telegram"
token = "123456:soak"
chat_id = -1001
api_url = "http://127.0.0.1:{telegram}"
min_interval_ms = 20
[[route]]
name = "missed calls"
kind = "call.missed"
to = ["tg", "crm"]
template = "soak"
continue = true
[[route]]
name = "everything"
vendor = "jivo"
to = ["crm"]
template = "soak"
""")
    os.makedirs(os.path.join(directory, "templates"), exist_ok=True)
    with open(os.path.join(directory, "templates/soak.hbs"), "w") as f:
        # The event id first: the Bot API peer counts distinct ids to find duplicates.
        f.write("{{!-- part: telegram --}}\n{{id}}\n{{kind}} {{contact.phone}}\n{{!-- part: body --}}\n"
                '{"event": "{{id}}", "kind": "{{kind}}"}\n')
    return path


def main():
    def options(parser):
        parser.add_argument("--minutes", type=float, default=3.0, help="length of the load")
        parser.add_argument("--rate", type=float, default=60.0, help="webhooks per second")

    args = arguments(__doc__, options)
    if not args.no_build:
        build()
    duration = args.minutes * 60
    directory = tempfile.mkdtemp(prefix="switchboard-soak-")
    hooks, admin, receiver_port, telegram_port = free_port(), free_port(), free_port(), free_port()
    peer = os.path.join(TARGET, "bench-peer")
    receiver = Server([peer, "receiver", "--listen", f"127.0.0.1:{receiver_port}", "--flap", "20,10"],
                      f"http://127.0.0.1:{receiver_port}/stats")
    telegram = Server([peer, "telegram", "--listen", f"127.0.0.1:{telegram_port}", "--storm", "30,8"],
                      f"http://127.0.0.1:{telegram_port}/stats")
    path = config(directory, hooks, admin, receiver_port, telegram_port)
    start = lambda: Server([os.path.join(TARGET, "switchboard"), "run", "--config", path],  # noqa: E731
                           f"http://127.0.0.1:{admin}/readyz", env={"RUST_LOG": "warn"}, cwd=directory)
    daemon = start()
    began = time.monotonic()
    load = Load(hooks, args.rate)
    load.start()
    memory, restarts = [], []
    restart_at = [duration / 3, 2 * duration / 3]
    while time.monotonic() - began < duration:
        time.sleep(5)
        elapsed = time.monotonic() - began
        memory.append((round(elapsed), round(rss_kib(daemon.proc.pid) / 1024, 1)))
        print(f"  t={elapsed:5.0f}s  accepted {len(load.accepted):6d}  not accepted {load.failed:5d}  "
              f"RSS {memory[-1][1]:6.1f} MiB", flush=True)
        if restart_at and elapsed >= restart_at[0]:
            restart_at.pop(0)
            how = "SIGTERM" if not restarts else "SIGKILL"
            down = time.monotonic()
            daemon.proc.send_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGKILL)
            daemon.proc.wait(30)
            daemon = start()
            restarts.append({"at_s": round(elapsed), "how": how, "down_ms": round((time.monotonic() - down) * 1000)})
            print(f"  restarted ({how}), down {restarts[-1]['down_ms']} ms", flush=True)
    load.finish()
    db = os.path.join(directory, "data/switchboard.db")
    drained = wait_until(lambda: pending(db) == 0, 180, 1)
    memory.append((round(time.monotonic() - began), round(rss_kib(daemon.proc.pid) / 1024, 1)))

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        stored = {row[0] for row in connection.execute("SELECT id FROM events")}
        kinds = dict(connection.execute("SELECT id, kind FROM events WHERE event = 'call_event'").fetchall())
        states = dict(connection.execute("SELECT state, count(*) FROM deliveries GROUP BY state").fetchall())
        undelivered = connection.execute(
            "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)"
        ).fetchone()[0]
    lost = [event for event in load.accepted if event not in stored]
    misclassified = [(end, want, kinds.get(end)) for end, want in load.calls if kinds.get(end) != want]
    receiver_stats = json.loads(get(f"http://127.0.0.1:{receiver_port}/stats")[1])
    telegram_stats = json.loads(get(f"http://127.0.0.1:{telegram_port}/stats")[1])
    daemon.stop()
    receiver.stop()
    telegram.stop()
    steady = [rss for t, rss in memory if t >= 30]
    report = {
        "minutes": args.minutes, "rate_per_s": args.rate,
        "accepted": len(load.accepted), "not_accepted_while_down_or_refused": load.failed,
        "lost": len(lost), "events_without_deliveries": undelivered,
        "calls": len(load.calls), "calls_misclassified": misclassified,
        "deliveries": states, "drained": drained, "restarts": restarts,
        "receiver": receiver_stats, "telegram": telegram_stats,
        "rss_mib": memory,
        "rss_steady_min_max_mib": [min(steady), max(steady)] if steady else None,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "rss_mib"}, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    ok = not lost and drained and states.get("dead", 0) == 0 and undelivered == 0 and not misclassified
    print("RESULT:", "zero lost, nothing dead, no call misclassified, queue drained" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
