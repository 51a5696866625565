"""Sync benchmark: requests, time, ingest rate and memory, through the loopback stand-in.

For synthetic libraries of 1k, 10k and 50k items (each size in a fresh process)
it prints: requests of a full sync against the protocol minimum ceil(N/100)
(N = every item object, children and trash included), requests of an unchanged
re-sync, requests and time when 1% of items changed, items/s ingested by the save
phase alone (fetch excluded), and peak RSS (the stand-in's in-memory library lives in
the same process, so the RSS before the first sync is printed too).

    .venv/bin/python bench/sync.py            # 1k, 10k, 50k
    .venv/bin/python bench/sync.py 1000 5000  # chosen sizes
"""

from __future__ import annotations

import gc
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(n: int) -> dict:
    from biblio import storage, subscribe_packages
    from biblio.settings import load_settings
    from biblio.standin.server import StandinServer
    from biblio.standin.synthetic import synthetic_library
    from biblio.sync.client import ZoteroClient
    from biblio.sync.fetch import fetch_changes
    from biblio.sync.run import run_sync
    from biblio.sync.save import save_changes

    library = synthetic_library(n, seed=7)
    # The stand-in's library shares this process: keep the collector from walking its
    # objects on every full collection (that shows up as random request stalls).
    gc.collect()
    gc.freeze()
    objects = len(library.snapshot()["items"])
    base_rss = rss_mb()
    folder = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    out: dict = {"items": n, "objects": objects}
    with StandinServer(library) as server:
        (folder / "settings.toml").write_text(f"[zotero]\nlibrary_id = {library.group_id}\n")
        settings = load_settings(
            folder / "settings.toml",
            environ={},
            overrides={
                "zotero": {"base_url": server.url},
                "database": {"url": f"sqlite:///{folder / 'bench.sqlite3'}"},
                "sync": {"lock_file": str(folder / "sync.lock")},
            },
        )
        engine = storage.open_database(settings["database"]["url"])

        started = time.perf_counter()
        subscribe_packages()  # tagging and search follow every sync
        full = run_sync(engine, settings)
        out["full_seconds"] = time.perf_counter() - started
        out["full_requests"] = full.requests
        out["minimum"] = math.ceil(objects / 100)

        out["unchanged_requests"] = run_sync(engine, settings).requests

        keys = sorted(library.snapshot()["items"])
        changed = keys[::100][: max(1, n // 100)]
        for key in changed:
            library.update_item(key, title=f"changed {key}")
        started = time.perf_counter()
        one_pct = run_sync(engine, settings)
        out["pct_seconds"] = time.perf_counter() - started
        out["pct_requests"] = one_pct.requests
        out["pct_changed"] = len(changed)

        # Ingest rate: fetch everything first, then time only the save (one transaction)
        # into a fresh database.
        fresh = storage.open_database(f"sqlite:///{folder / 'ingest.sqlite3'}")
        with ZoteroClient(settings) as client:
            changes = fetch_changes(client, 0, full=True)
        started = time.perf_counter()
        with storage.transaction(fresh) as conn:
            save_changes(conn, changes, storage.utcnow())
        out["save_seconds"] = time.perf_counter() - started
        out["ingest_per_s"] = len(changes.items) / out["save_seconds"]
    out["base_rss_mb"] = base_rss
    out["peak_rss_mb"] = rss_mb()
    return out


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--child":
        print(json.dumps(measure(int(argv[1]))))
        return
    sizes = [int(a) for a in argv] or [1_000, 10_000, 50_000]
    rows = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(n)],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    head = (
        f"{'items':>7} {'objects':>8} {'full req':>8} {'min':>5} {'ratio':>6} "
        f"{'full s':>7} {'unch req':>8} {'1% n':>5} {'1% req':>6} {'1% s':>6} "
        f"{'save items/s':>12} {'RSS base MB':>11} {'RSS peak MB':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['items']:>7} {r['objects']:>8} {r['full_requests']:>8} {r['minimum']:>5} "
            f"{r['full_requests'] / r['minimum']:>6.3f} {r['full_seconds']:>7.2f} "
            f"{r['unchanged_requests']:>8} {r['pct_changed']:>5} {r['pct_requests']:>6} "
            f"{r['pct_seconds']:>6.2f} {r['ingest_per_s']:>12,.0f} "
            f"{r['base_rss_mb']:>11.0f} {r['peak_rss_mb']:>11.0f}"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main(sys.argv[1:])
