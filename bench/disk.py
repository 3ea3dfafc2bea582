#!/usr/bin/env python3
"""What this machine's disk does with syncs: 16 KiB `pwrite` + `fdatasync`, from 1, 2, 4 and 8
threads at once, into a file written in place (as SQLite writes its log once it has grown),
in the directory the benchmarks keep their data in (the system's temporary directory).

A server that answers only after its data is synced is clocked by this: with one sync at a
time, requests/s is syncs/s × requests per sync. Whether several syncs at once go faster
tells whether a second sync in flight could help (on the virtual disks measured so far it
does, nearly 1.5× from two threads, but the store's commits were then smaller and cost more
CPU; see BENCHMARKS.md, "What we tried that did not help"). bench/run.py records the 1- and
4-thread figures with the machine.

Usage: python3 bench/disk.py [--seconds 2]
"""

import argparse
import mmap
import os
import statistics
import tempfile
import threading
import time

BLOCK = 16 * 1024
FILE_SIZE = 64 * 1024 * 1024


def syncs(threads, seconds=2.0):
    """{"threads", "syncs_per_s", "sync_us", "p99_us"}: `threads` threads each writing BLOCK bytes
    into a region of its own of one pre-written file and syncing it, for `seconds`; sync_us is
    the mean time of one write and its sync, p99_us its 99th percentile (the tail that a server
    syncing before it answers passes on to its own p99)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "syncs.dat")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            zeros = bytes(1024 * 1024)
            for offset in range(0, FILE_SIZE, len(zeros)):
                os.pwrite(fd, zeros, offset)
            os.fsync(fd)
            region = FILE_SIZE // threads
            took = [[] for _ in range(threads)]
            deadline = time.monotonic() + seconds

            def writer(index):
                block = mmap.mmap(-1, BLOCK)
                block.write(b"x" * BLOCK)
                mine = took[index]
                while (started := time.monotonic()) < deadline:
                    os.pwrite(fd, block, index * region + (len(mine) * BLOCK) % (region - BLOCK))
                    os.fdatasync(fd)
                    mine.append(time.monotonic() - started)

            workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        finally:
            os.close(fd)
    every = sorted(t for mine in took for t in mine)
    p99 = every[min(len(every) - 1, len(every) * 99 // 100)] if every else 0
    return {"threads": threads, "syncs_per_s": round(len(every) / seconds),
            "sync_us": round(statistics.fmean(every) * 1e6) if every else 0, "p99_us": round(p99 * 1e6)}


def describe(result):
    return (f"{result['threads']} at once: {result['syncs_per_s']} syncs/s, {result['sync_us']} µs each, "
            f"p99 {result['p99_us']} µs")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    for threads in (1, 2, 4, 8):
        print(describe(syncs(threads, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
