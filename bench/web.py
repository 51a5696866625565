"""Benchmark the public pages under concurrent load: p50/p95 latency per scenario.

For each library size (default 1k and 50k items) this builds a cache once into
``bench/.scratch/`` by syncing ``StandinLibrary.synthetic(n)`` through the loopback
Zotero stand-in (reused on later runs), starts gunicorn on loopback against it, and
drives four scenarios with 8 concurrent client threads on keep-alive connections, a
bounded number of requests each: the item list, a faceted filter, a full-text search
and item pages. It prints one table row per (size, scenario). Run:

    .venv/bin/python bench/web.py [--sizes 1000,50000] [--requests 400] [--clients 8]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "bench" / ".scratch"
sys.path.insert(0, str(ROOT))


def build(n: int) -> Path:
    """The settings file of a synced cache of ``n`` synthetic items (built once)."""
    from biblio import storage
    from biblio.settings import load_settings
    from biblio.sync.run import run_sync
    from biblio.sync.standin import StandinServer
    from biblio.sync.standin_library import StandinLibrary

    folder = SCRATCH / f"web-{n}"
    conf = folder / "settings.toml"
    done = folder / "synced"
    if done.exists():
        return conf
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("biblio.sqlite3*"):
        old.unlink()
    lib = StandinLibrary.synthetic(n, seed=4)
    with StandinServer(lib) as zotero:
        conf.write_text(
            f'[zotero]\nlibrary_id = {lib.group_id}\nbase_url = "{zotero.url}"\n'
            f'[database]\nurl = "sqlite:///{folder / "biblio.sqlite3"}"\n'
            f'[sync]\nlock_file = "{folder / "sync.lock"}"\nprerender = false\n',
            encoding="utf-8")
        settings = load_settings(conf, environ={})
        started = time.monotonic()
        result = run_sync(storage.open_database(settings["database"]["url"]), settings)
        print(f"built {n}: {result.summary()} ({time.monotonic() - started:.0f} s)",
              file=sys.stderr)
    storage.dispose_all()
    done.write_text("ok\n")
    return conf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(conf: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "BIBLIO_SETTINGS": str(conf), "BIBLIO_LOG_LEVEL": "WARNING",
           "BIBLIO_SECRET_KEY": "bench-only-secret"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-w", str(workers), "-k", "gthread",
         "--threads", "4", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
         "biblio:create_app()"], cwd=ROOT, env=env)
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/-/versions.json")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gunicorn did not start")


def drive(port: int, paths: list[str], clients: int) -> list[float]:
    """Fetch every path once, ``clients`` at a time; return latencies in ms."""
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(reversed(paths))
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue:
                    break
                path = queue.pop()
            t0 = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            elapsed = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(elapsed)
                if resp.status != 200:
                    errors.append(f"{resp.status} {path}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return latencies


def scenarios(conf: Path, requests: int, rng: random.Random) -> dict[str, list[str]]:
    from sqlalchemy import select

    from biblio import storage
    from biblio.settings import load_settings

    settings = load_settings(conf, environ={})
    engine = storage.open_database(settings["database"]["url"])
    i, t = storage.items.c, storage.item_tags.c
    with engine.connect() as conn:
        keys = conn.execute(select(i.key).where(i.parent_key.is_(None),
                                                i.item_type.not_in(("note", "attachment")))
                            ).scalars().all()
        tags = conn.execute(select(t.tag).distinct().limit(20)).scalars().all()
        types = conn.execute(select(i.item_type).distinct()).scalars().all()
    storage.dispose_all()
    types = [x for x in types if x not in ("note", "attachment")]
    words = ["clim*", "urban", "resilien*", '"evidence synthesis"', "govern*", "learning"]
    sorts = ["added", "year", "title", "-year"]
    return {
        "list": [f"/items?_sort={rng.choice(sorts)}" for _ in range(requests)],
        "facet": ["/items?" + urlencode({"type": rng.choice(types), "tag": rng.choice(tags),
                                         "decade": 2010}) for _ in range(requests)],
        "search": ["/items?" + urlencode({"q": rng.choice(words)}) for _ in range(requests)],
        "item": [f"/items/{rng.choice(keys)}" for _ in range(requests)],
    }


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,50000")
    parser.add_argument("--requests", type=int, default=400, help="per scenario")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    args = parser.parse_args()
    rng = random.Random(7)
    print(f"| items | scenario | requests | p50 ms | p95 ms | max ms |  ({args.clients} clients, "
          f"gunicorn {args.workers} workers x 4 threads)")
    print("|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        conf = build(n)
        paths = scenarios(conf, args.requests, rng)
        proc, port = start_server(conf, args.workers)
        try:
            for name, urls in paths.items():
                drive(port, urls[: max(args.clients * 2, 16)], args.clients)  # warm up
                lat = drive(port, urls, args.clients)
                print(f"| {n} | {name} | {len(lat)} | {pct(lat, 50):.1f} | {pct(lat, 95):.1f} "
                      f"| {max(lat):.1f} |", flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
