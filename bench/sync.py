"""Sync benchmark: requests, wall time, items/s and peak RSS, through the loopback stand-in.

The stand-in serves a synthetic library from this process, with a network's latency
added to every answer; each sync runs in a fresh child process, so its peak RSS is the
sync's own (library, stand-in and JSON caches stay here). Parts (all by default):

- ``full``: full syncs of 10k and 50k items at 0, 100 and 300 ms per answer, with
  concurrency 1 and the default: requests against the protocol minimum
  (ceil(N/100) + collection pages + the group read + the full-text listing), wall
  time, items/s and peak RSS.
- ``resync``: an unchanged re-sync and one after 1% of the items changed (requests,
  time), at 0 and 100 ms.
- ``rss``: peak RSS of a full sync at 10k, 50k and 100k items (no latency).
- ``fulltext``: 2,000 attachments with indexed text: the first sync and one after 5%
  of the texts changed (requests, time) at 0 and 100 ms.

``--code DIR`` runs the children against another checkout of biblio (a "before"
measurement; options it does not know are left out). Each configuration runs once:
the machine is shared, so compare figures within one run.

    .venv/bin/python bench/sync.py                      # everything
    .venv/bin/python bench/sync.py full --sizes 10000   # one part, chosen sizes
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# -- the child: one sync, in its own process ------------------------------------------


def child(args: dict) -> dict:
    from biblio import storage, subscribe_packages
    from biblio.settings import load_settings
    from biblio.sync.run import run_sync

    folder = Path(args["folder"])
    (folder / "settings.toml").write_text(f"[zotero]\nlibrary_id = {args['group']}\n")
    sync: dict = {"lock_file": str(folder / "sync.lock"), "prerender": False}
    if args.get("concurrency"):
        sync["concurrency"] = args["concurrency"]
    settings = load_settings(
        folder / "settings.toml",
        environ={},
        overrides={
            "zotero": {"base_url": args["url"]},
            "database": {"url": f"sqlite:///{folder / 'bench.sqlite3'}"},
            "sync": sync,
        },
    )
    engine = storage.open_database(settings["database"]["url"])
    subscribe_packages()  # tagging and search follow every sync, as in production
    base = rss_mb()
    started = time.perf_counter()
    result = run_sync(engine, settings, full=args.get("full", False))
    return {
        "seconds": time.perf_counter() - started,
        "fetch_seconds": getattr(result, "fetch_seconds", 0.0),
        "save_seconds": getattr(result, "save_seconds", 0.0),
        "subscribers_seconds": getattr(result, "subscribers_seconds", 0.0),
        "requests": result.requests,
        "added": result.counts.added,
        "status": result.status,
        "rss_base_mb": base,
        "rss_peak_mb": rss_mb(),
    }


def rss_mb() -> float:
    """Peak RSS of this process. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss over fork and exec, so a child would report its parent's peak (here, the
    parent holds the stand-in's whole library)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the parent: the stand-in, and children to measure ---------------------------------


class Bench:
    def __init__(self, code: Path | None) -> None:
        self.code = code
        self.rows: dict[str, list[dict]] = {}

    def sync(self, server, folder: Path, **options) -> dict:
        args = {"url": server.url, "group": server.library.group_id, "folder": str(folder)}
        if self.code is not None:
            options.pop("concurrency", None)  # an older checkout has no such setting
        args.update(options)
        env = dict(os.environ, PYTHONPATH=str(self.code or ROOT))
        env.pop("BIBLIO_SETTINGS", None)
        server.reset_counts()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(args)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode:
            raise SystemExit(f"child failed:\n{proc.stderr[-3000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["served"] = server.request_count
        out["peak_concurrency"] = server.peak_concurrency
        return out


def library(n: int, fulltext: int = 0):
    from biblio.standin.synthetic import synthetic_library

    lib = synthetic_library(n, seed=7, children_ratio=0.4 if fulltext else 0.15, fulltext=fulltext)
    # The library lives as long as this process: keep the collector from walking it
    # on every full collection (that shows up as random request stalls).
    gc.collect()
    gc.freeze()
    return lib


def minimum(lib) -> int:
    snap = lib.snapshot()
    return (
        math.ceil(len(snap["items"]) / 100)
        + max(1, math.ceil(len(snap["collections"]) / 100))
        + 1  # the group
        + 1  # the full-text listing
    )


def part_full(bench: Bench, sizes: list[int], latencies: list[float], levels: list[int]) -> None:
    from biblio.standin.server import StandinServer

    print("\n== full sync ==")
    head = (
        f"{'items':>7} {'objects':>8} {'latency':>7} {'conc':>4} {'requests':>8} {'minimum':>7} "
        f"{'ratio':>6} {'wall s':>7} {'fetch s':>7} {'save s':>6} {'subscr s':>8} "
        f"{'items/s':>8} {'in flight':>9} {'RSS MB':>7}"
    )
    print(head)
    print("-" * len(head))
    for n in sizes:
        lib = library(n)
        objects = len(lib.items)
        with StandinServer(lib) as server:
            for latency in latencies:
                server.latency(latency)
                for level in levels:
                    with tempfile.TemporaryDirectory(prefix="bench-sync-") as folder:
                        r = bench.sync(server, Path(folder), concurrency=level)
                    print(
                        f"{n:>7} {objects:>8} {latency * 1000:>5.0f}ms {level:>4} "
                        f"{r['requests']:>8} {minimum(lib):>7} "
                        f"{r['requests'] / minimum(lib):>6.3f} {r['seconds']:>7.1f} "
                        f"{r['fetch_seconds']:>7.1f} {r['save_seconds']:>6.1f} "
                        f"{r['subscribers_seconds']:>8.1f} "
                        f"{objects / r['seconds']:>8,.0f} {r['peak_concurrency']:>9} "
                        f"{r['rss_peak_mb']:>7.0f}",
                        flush=True,
                    )
        del lib


def part_resync(bench: Bench, sizes: list[int], latencies: list[float]) -> None:
    from biblio.standin.server import StandinServer

    print("\n== re-syncs ==")
    head = (
        f"{'items':>7} {'latency':>7} {'unch req':>8} {'unch s':>7} "
        f"{'1% n':>5} {'1% req':>6} {'1% min':>6} {'1% s':>6}"
    )
    print(head)
    print("-" * len(head))
    for n in sizes:
        lib = library(n)
        with StandinServer(lib) as server, tempfile.TemporaryDirectory() as folder:
            bench.sync(server, Path(folder))  # the first, full sync
            for latency in latencies:
                server.latency(latency)
                same = bench.sync(server, Path(folder))
                keys = sorted(lib.items)
                changed = keys[::100][: max(1, n // 100)]
                for key in changed:
                    lib.update_item(key, title=f"changed {key} at {latency}")
                pct = bench.sync(server, Path(folder))
                # versions + collection versions + ceil(C/50) batches + deleted + group
                # + the full-text listing
                least = 2 + math.ceil(len(changed) / 50) + 1 + 1 + 1
                print(
                    f"{n:>7} {latency * 1000:>5.0f}ms {same['requests']:>8} "
                    f"{same['seconds']:>7.2f} {len(changed):>5} {pct['requests']:>6} "
                    f"{least:>6} {pct['seconds']:>6.2f}",
                    flush=True,
                )
        del lib


def part_rss(bench: Bench, sizes: list[int]) -> None:
    from biblio.standin.server import StandinServer

    print("\n== peak RSS of a full sync (the sync's process alone) ==")
    print(f"{'items':>7} {'wall s':>7} {'RSS at start MB':>15} {'RSS peak MB':>11}")
    for n in sizes:
        lib = library(n)
        with StandinServer(lib) as server, tempfile.TemporaryDirectory() as folder:
            r = bench.sync(server, Path(folder))
        print(f"{n:>7} {r['seconds']:>7.1f} {r['rss_base_mb']:>15.0f} {r['rss_peak_mb']:>11.0f}")
        del lib


def part_fulltext(bench: Bench, texts: int, latencies: list[float]) -> None:
    from biblio.standin.server import StandinServer

    print(f"\n== full text: {texts:,} attachments with text ==")
    head = f"{'latency':>7} {'run':>16} {'requests':>8} {'texts':>6} {'wall s':>7}"
    print(head)
    print("-" * len(head))
    n = max(20_000, texts * 10)
    for latency in latencies:
        lib = library(n, fulltext=texts)
        with StandinServer(lib) as server, tempfile.TemporaryDirectory() as folder:
            server.latency(latency)
            first = bench.sync(server, Path(folder))
            keys = sorted(lib.fulltext.records)[::20]
            for key in keys:
                lib.set_fulltext(key, f"revised text of {key}", indexedPages=1, totalPages=1)
            again = bench.sync(server, Path(folder))
        for name, r, count in (("first", first, texts), ("5% texts changed", again, len(keys))):
            print(
                f"{latency * 1000:>5.0f}ms {name:>16} {r['requests']:>8} {count:>6} "
                f"{r['seconds']:>7.1f}",
                flush=True,
            )
        del lib


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--child":
        print(json.dumps(child(json.loads(argv[1]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parts", nargs="*", default=["full", "resync", "rss", "fulltext"])
    ap.add_argument("--sizes", type=int, nargs="+")
    ap.add_argument("--latencies", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4], help="concurrency levels")
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--code", type=Path, help="another checkout of biblio to measure")
    args = ap.parse_args(argv)
    bench = Bench(args.code)
    for part in args.parts:
        if part == "full":
            part_full(bench, args.sizes or [10_000, 50_000], args.latencies, args.levels)
        elif part == "resync":
            part_resync(
                bench, args.sizes or [10_000, 50_000], [x for x in args.latencies if x < 0.2]
            )
        elif part == "rss":
            part_rss(bench, args.sizes or [10_000, 50_000, 100_000])
        elif part == "fulltext":
            part_fulltext(bench, args.texts, [x for x in args.latencies if x < 0.2])
        else:
            raise SystemExit(f"unknown part {part!r}")


if __name__ == "__main__":
    # A child imports biblio from PYTHONPATH (this checkout, or the one --code names).
    if sys.argv[1:2] != ["--child"]:
        sys.path.insert(0, str(ROOT))
    else:
        sys.path[0:0] = os.environ.get("PYTHONPATH", str(ROOT)).split(os.pathsep)
    main(sys.argv[1:])
