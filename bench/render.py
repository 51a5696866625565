"""Render bench: cold and warm time of a 1,000-item bibliography in APA and Chicago.

A deterministic synthetic library is synced through the loopback Zotero stand-in into
a temporary SQLite file (pre-rendering off, so the first render is truly cold). For
each style the render cache is cleared, the 1,000 items are rendered once (cold: every
entry through citeproc-py, then stored) and again (warm: read from the cache and put
in order), and the warm/cold ratio is printed; the goal is a warm export at least 100x
faster than a cold render. Also shown: a warm end-to-end text export (reading the items
from the database included). Run: ``.venv/bin/python bench/render.py [N]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from biblio import exports, subscribe_packages
from biblio import storage as st
from biblio.catalog.items import iter_items
from biblio.citations import cache as rendercache
from biblio.settings import load_settings
from biblio.standin.server import StandinServer
from biblio.standin.synthetic import synthetic_library
from biblio.sync.run import run_sync

STYLES = ("apa", "chicago-author-date")


def main(n: int = 1000) -> int:
    lib = synthetic_library(int(n * 1.25), seed=7)
    folder = Path(tempfile.mkdtemp(prefix="biblio-bench-render-"))
    with StandinServer(lib) as zotero:
        settings = load_settings(
            None,
            environ={},
            overrides={
                "zotero": {"base_url": zotero.url, "library_id": lib.group_id},
                "database": {"url": f"sqlite:///{folder / 'bench.sqlite3'}"},
                "sync": {"lock_file": str(folder / "sync.lock"), "prerender": False},
            },
        )
        engine = st.open_database(settings["database"]["url"])
        subscribe_packages()  # tagging and search follow every sync
        run_sync(engine, settings)
    rows = list(iter_items(engine))[:n]
    print(f"{len(rows)} items, synthetic library synced through the stand-in")
    print(
        f"{'style':<22}{'cold s':>9}{'warm s':>9}{'ms/item cold':>14}{'warm/cold':>11}"
        f"{'speed-up':>10}"
    )
    worst = None
    for style in STYLES:
        rendercache.clear(engine, style)
        t0 = time.perf_counter()
        cold = rendercache.render(engine, rows, style, fmt="html")
        t1 = time.perf_counter()
        warm = rendercache.render(engine, rows, style, fmt="html")
        t2 = time.perf_counter()
        assert [(e.id, e.text) for e in warm] == [(e.id, e.text) for e in cold]
        c, w = t1 - t0, t2 - t1
        speedup = c / w
        worst = speedup if worst is None else min(worst, speedup)
        print(
            f"{style:<22}{c:>9.2f}{w:>9.3f}{1000 * c / len(rows):>14.1f}{w / c:>11.4f}"
            f"{speedup:>9.0f}x"
        )
    rendercache.render(engine, rows, "apa", fmt="text")
    t0 = time.perf_counter()
    size = sum(
        len(chunk)
        for chunk in exports.export(
            engine, "text", iter(list(iter_items(engine))[:n]), exports.Options(style="apa")
        )
    )
    print(
        f"warm end-to-end text export in apa (DB read + document): "
        f"{time.perf_counter() - t0:.3f} s, {size} characters"
    )
    goal = worst is not None and worst >= 100
    print(f"goal (warm >= 100x faster than cold): {'met' if goal else 'NOT met'}")
    st.dispose_all()
    return 0 if goal else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
