"""Benchmark the public pages under concurrent load: p50/p95 latency per scenario.

For each library size (default 1k and 50k items) this builds a cache once into
``bench/.scratch/`` by syncing ``synthetic_library(n)`` through the loopback
Zotero stand-in (reused on later runs), starts gunicorn on loopback against it, and
drives five scenarios with 8 concurrent client threads on keep-alive connections, a
bounded number of requests each after a warm-up: the item list, a faceted filter, a
full-text search, item pages, and "mixed" (one to three random filters of any kind,
any sort, sometimes page 2: mostly combinations no cache has seen). The cache is
pre-rendered in the default citation style, as a production sync does. It prints one
table row per (size, scenario) with throughput and the CPU the server and this client
used (in cores; the client shares the machine, so its share is reported). Run:

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
    from biblio import storage, subscribe_packages
    from biblio.settings import load_settings
    from biblio.standin.server import StandinServer
    from biblio.standin.synthetic import synthetic_library
    from biblio.sync.run import run_sync

    folder = SCRATCH / f"web-{n}"
    conf = folder / "settings.toml"
    done = folder / "synced"
    if done.exists():
        prerender(conf, folder)
        return conf
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("biblio.sqlite3*"):
        old.unlink()
    lib = synthetic_library(n, seed=4)
    with StandinServer(lib) as zotero:
        conf.write_text(
            f'[zotero]\nlibrary_id = {lib.group_id}\nbase_url = "{zotero.url}"\n'
            f'[database]\nurl = "sqlite:///{folder / "biblio.sqlite3"}"\n'
            f'[sync]\nlock_file = "{folder / "sync.lock"}"\nprerender = false\n',
            encoding="utf-8",
        )
        settings = load_settings(conf, environ={})
        started = time.monotonic()
        subscribe_packages()  # tagging and search follow every sync
        result = run_sync(storage.open_database(settings["database"]["url"]), settings)
        print(
            f"built {n}: {result.summary()} ({time.monotonic() - started:.0f} s)", file=sys.stderr
        )
    storage.dispose_all()
    done.write_text("ok\n")
    prerender(conf, folder)
    return conf


def prerender(conf: Path, folder: Path) -> None:
    """Pre-render the default citation style once, as a production sync does
    (``[sync] prerender`` defaults on); the build itself skips it to stay simple."""
    from biblio import storage
    from biblio.citations import prerender as rendercache
    from biblio.settings import load_settings

    done = folder / "prerendered"
    if done.exists():
        return
    settings = load_settings(conf, environ={})
    started = time.monotonic()
    count = rendercache.prerender(storage.open_database(settings["database"]["url"]), settings)
    storage.dispose_all()
    print(f"pre-rendered {count} citations ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    done.write_text("ok\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(conf: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "BIBLIO_SETTINGS": str(conf),
        "BIBLIO_LOG_LEVEL": "WARNING",
        "BIBLIO_SECRET_KEY": "bench-only-secret",
    }
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            "4",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "biblio:create_app()",
        ],
        cwd=ROOT,
        env=env,
    )
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children (gunicorn's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:  # fields[1] is the ppid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


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
        keys = (
            conn.execute(
                select(i.key).where(
                    i.parent_key.is_(None), i.item_type.not_in(("note", "attachment"))
                )
            )
            .scalars()
            .all()
        )
        tags = conn.execute(select(t.tag).distinct().limit(20)).scalars().all()
        types = conn.execute(select(i.item_type).distinct()).scalars().all()
        c, ic = storage.item_creators.c, storage.item_collections.c
        creators = (
            conn.execute(select(c.name).distinct().order_by(c.name).limit(200)).scalars().all()
        )
        collections = (
            conn.execute(
                select(ic.collection_key).distinct().order_by(ic.collection_key).limit(200)
            )
            .scalars()
            .all()
        )
    storage.dispose_all()
    types = [x for x in types if x not in ("note", "attachment")]
    words = ["clim*", "urban", "resilien*", '"evidence synthesis"', "govern*", "learning"]
    sorts = ["added", "year", "title", "-year"]
    prongs = ["mlis-access", "pathways", "worker-equity"]
    decades = [1990, 2000, 2010, 2020]

    own = random.Random(len(keys))  # its own draws, so the other scenarios stay as before

    def mixed() -> str:
        """A visitor's varied query: one to three filters, any sort, sometimes page 2."""
        rng = own
        pick = {
            "prong": rng.choice(prongs),
            "type": rng.choice(types),
            "tag": rng.choice(tags),
            "decade": rng.choice(decades),
            "q": rng.choice(words),
            "creator": rng.choice(creators),
            "collection": rng.choice(collections),
        }
        chosen = dict(rng.sample(sorted(pick.items()), rng.randint(1, 3)))
        chosen["_sort"] = rng.choice(sorts)
        if rng.random() < 0.2:
            chosen["_next"] = "bzUw"  # offset 50
        return "/items?" + urlencode(chosen)

    return {
        "list": [f"/items?_sort={rng.choice(sorts)}" for _ in range(requests)],
        "facet": [
            "/items?"
            + urlencode({"type": rng.choice(types), "tag": rng.choice(tags), "decade": 2010})
            for _ in range(requests)
        ],
        "search": ["/items?" + urlencode({"q": rng.choice(words)}) for _ in range(requests)],
        "item": [f"/items/{rng.choice(keys)}" for _ in range(requests)],
        "mixed": [mixed() for _ in range(requests)],
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
    print(
        f"{args.clients} clients, gunicorn {args.workers} workers x 4 threads, "
        f"{os.cpu_count()} CPUs; server/client CPU in cores busy (of {os.cpu_count()})"
    )
    print(
        "| items | scenario | requests | p50 ms | p95 ms | max ms | req/s | server CPU "
        "| client CPU | load 1m |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        conf = build(n)
        paths = scenarios(conf, args.requests, rng)
        proc, port = start_server(conf, args.workers)
        try:
            for name, urls in paths.items():
                drive(port, urls[: max(args.clients * 2, 16)], args.clients)  # warm up
                wall, client, server = (
                    time.monotonic(),
                    time.process_time(),
                    cpu_seconds(proc.pid),
                )
                lat = drive(port, urls, args.clients)
                wall = time.monotonic() - wall
                client = (time.process_time() - client) / wall
                server = (cpu_seconds(proc.pid) - server) / wall
                print(
                    f"| {n} | {name} | {len(lat)} | {pct(lat, 50):.1f} | {pct(lat, 95):.1f} "
                    f"| {max(lat):.1f} | {len(lat) / wall:.0f} | {server:.2f} | {client:.2f} "
                    f"| {os.getloadavg()[0]:.1f} |",
                    flush=True,
                )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
