"""Run the CSL processor test suite over biblio's citation layer, plain citeproc-py beside it.

The fixtures (``processor-tests/humans`` of ``citation-style-language/test-suite``) are
read at run time from a copy on disk: ``--suite`` names a checkout or a git directory
(e.g. the snapshot the ``fetch`` tool leaves under ``/work/.mirror/``); nothing of the
suite is kept in this repository.

A fixture is run when biblio's layer covers what it asks for: ``bibliography`` mode
(the whole bibliography, as biblio renders it) and ``citation`` mode with one citation
cluster of every item (what ``makeCitationCluster`` does when the fixture has neither
``CITATIONS`` nor ``CITATION-ITEMS``). Fixtures that need citation clusters, positions,
locators, ``BIBENTRIES``/``BIBSECTION`` or abbreviations are counted as not run: biblio
renders bibliographies and single references, not notes or citation clusters. Results are
compared as HTML after the same normalisation on both sides (entities decoded, whitespace
between tags removed, runs of spaces collapsed).

Usage: ``.venv/bin/python bench/fidelity/suite.py [--suite DIR] [--show CATEGORY]
[--only NAME]``
"""

from __future__ import annotations

import argparse
import html
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import warnings
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from biblio.citations import pipeline, sorting  # noqa: E402
from biblio.citations.engine import state  # noqa: E402
from biblio.citations.render import entries as to_entries  # noqa: E402
from biblio.citations.styles import load_style  # noqa: E402

MIRROR = Path("/work/.mirror/citation-style-language+test-suite/repo")
HUMANS = "processor-tests/humans"
_SECTION = re.compile(r">>=+ ([A-Z-]+) =+>>\n(.*?)\n<<=+ \1 =+<<", re.S)
NOT_RUN = ("CITATIONS", "CITATION-ITEMS", "BIBENTRIES", "BIBSECTION", "ABBREVIATIONS")


def fixtures(suite: Path) -> dict[str, dict[str, str]]:
    """Every fixture of ``processor-tests/humans`` by name, as its sections."""
    texts: dict[str, str] = {}
    if (suite / HUMANS).is_dir():
        for path in sorted((suite / HUMANS).glob("*.txt")):
            texts[path.stem] = path.read_text("utf-8")
    else:  # a git directory: read the tree without checking it out
        tar = subprocess.run(
            ["git", f"--git-dir={suite}", "archive", "HEAD", HUMANS],
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            for member in archive.getmembers():
                if member.name.endswith(".txt"):
                    data = archive.extractfile(member)
                    if data is not None:
                        texts[Path(member.name).stem] = data.read().decode("utf-8")
    return {name: dict(_SECTION.findall(text)) for name, text in texts.items()}


def normalise(text: str) -> str:
    text = re.sub(r">\s+<", "><", text.strip())
    text = html.unescape(html.unescape(text))
    return " ".join(text.split())


def bib_html(texts: list[str]) -> str:
    body = "".join(f'<div class="csl-entry">{t}</div>' for t in texts)
    return f'<div class="csl-bib-body">{body}</div>'


def _locale(csl_path: str) -> str:
    head = Path(csl_path).read_text("utf-8")[:2000]
    m = re.search(r'default-locale="([^"]+)"', head)
    return m.group(1) if m else "en-US"


def run_biblio(mode: str, csl_path: str, items: list[dict]) -> str:
    style = load_style(csl_path, locale=_locale(csl_path))
    # the suite's expectations are citeproc-js's with its default options: without the
    # capitalised subtitles Zotero asks for in APA-family styles (fixtures with APA ids)
    style.root.uppercase_subtitles = False
    renderer = pipeline.Renderer(style, "html")
    renderer.items = {}
    try:
        if mode == "bibliography":
            result = pipeline.run(renderer, items, renderer.prepare, renderer.render)
            return bib_html([e.text for e in to_entries(items, result, "html")])
        return _citation(renderer, items)
    finally:
        state.reset()


def _citation(renderer: pipeline.Renderer, items: list[dict]) -> str:
    """One citation of every item, with biblio's disambiguation and the citation's sort."""
    prepared = renderer.prepare(list(enumerate(items)))
    good = [p for p in prepared if p.error is None]
    bib_keys = renderer.key_els
    order = sorting.order([(p.index, p.keys) for p in good], bib_keys)
    numbers = {i: n + 1 for n, i in enumerate(order)}
    by_index = {p.index: p for p in good}
    plan = renderer.disambiguation.plan(
        [(i, items[i], numbers[i], by_index[i].cite) for i in order]
    )
    cite_el = renderer.cite_el
    layout = cite_el.layout
    sort = cite_el.find("{http://purl.org/net/xbiblio/csl}sort")
    cited = [p.index for p in good]
    if sort is not None:
        keys = sort.findall("{http://purl.org/net/xbiblio/csl}key")
        rows = []
        for i in cited:
            item = renderer.item(i, items[i])
            item.__dict__["number"] = numbers[i]
            rows.append((i, _keys(renderer, keys, item)))
        cited = sorting.order(rows, keys)
    out = []
    for i in cited:
        item = renderer.item(i, items[i])
        item.__dict__["number"] = numbers[i]
        state.reset("cite")
        suffix = plan.suffixes.get(i)
        if suffix and not renderer.style.explicit_year_suffix:
            state.year_suffix = suffix
        state.add_names = plan.shown.get(i)
        layout.repressed = {}
        cite_el.cites = []
        text = layout.render_children(item)
        if text is not None:
            out.append(text)
    state.reset()
    if not out:
        return ""
    from citeproc.string import join

    text = layout.format(layout.wrap(join(out, layout.get("delimiter", ""))))
    return renderer.finish(str(text))


def _keys(renderer, key_els, item) -> list[tuple]:
    layout = renderer.cite_el.layout
    keys = []
    for key_el in key_els:
        state.reset("sort")
        try:
            keys.append(sorting._value_key(sorting._item_key(key_el, item, layout)))
        except Exception:
            keys.append(())
    state.reset()
    return keys


def run_plain(mode: str, csl_path: str, items: list[dict]) -> str:
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
        style = CitationStylesStyle(csl_path, locale=_locale(csl_path), validate=False)
        bib = CitationStylesBibliography(style, CiteProcJSON(items), formatter.html)
        citation = Citation([CitationItem(i["id"]) for i in items])
        bib.register(citation)
        if mode == "bibliography":
            bib.sort()
            return bib_html([str(t) for t in bib.bibliography()])
        return str(bib.cite(citation, lambda _: None))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default=os.environ.get("BIBLIO_CSL_SUITE", str(MIRROR)))
    ap.add_argument("--show", action="append", default=[], help="print failures of a category")
    ap.add_argument("--only", action="append", default=[], help="run these fixtures only")
    ap.add_argument("--json", help="write per-fixture results here")
    args = ap.parse_args()
    suite = Path(args.suite)
    if not suite.exists():
        sys.exit(f"no CSL test suite at {suite}; fetch citation-style-language/test-suite")
    found = fixtures(suite)
    totals: dict[str, Counter] = defaultdict(Counter)
    results = {}
    folder = Path(tempfile.mkdtemp(prefix="biblio-csl-suite-"))
    for name, sections in sorted(found.items()):
        if args.only and name not in args.only:
            continue
        category = name.split("_")[0]
        totals[category]["fixtures"] += 1
        mode = sections.get("MODE", "").strip()
        runnable = all(s in sections for s in ("CSL", "INPUT", "RESULT"))
        if not runnable or any(s in sections for s in NOT_RUN):
            continue
        if mode not in ("citation", "bibliography"):
            continue
        totals[category]["run"] += 1
        csl_path = folder / f"{name}.csl"
        csl_path.write_text(sections["CSL"], "utf-8")
        items = json.loads(sections["INPUT"])
        expected = normalise(sections["RESULT"])
        row = {}
        for engine, runner in (("biblio", run_biblio), ("citeproc-py", run_plain)):
            try:
                got = normalise(runner(mode, str(csl_path), items))
            except Exception as exc:  # a crash is a failure
                got = f"!! {type(exc).__name__}: {exc}"
            ok = got == expected
            totals[category][engine] += ok
            row[engine] = {"ok": ok, "got": got}
        results[name] = {"expected": expected, **row}
        if category in args.show and not row["biblio"]["ok"]:
            print(f"-- {name}\n   want {expected[:300]}\n   got  {row['biblio']['got'][:300]}")
    print(f"\n{'category':16}{'fixtures':>9}{'run':>6}{'biblio':>9}{'citeproc-py':>13}")
    grand: Counter = Counter()
    for category in sorted(totals):
        t = totals[category]
        grand.update(t)
        print(f"{category:16}{t['fixtures']:>9}{t['run']:>6}{t['biblio']:>9}{t['citeproc-py']:>13}")
    print(
        f"{'total':16}{grand['fixtures']:>9}{grand['run']:>6}"
        f"{grand['biblio']:>9}{grand['citeproc-py']:>13}"
    )
    print(
        f"\npassed of the fixtures run: biblio {grand['biblio']}/{grand['run']}, "
        f"plain citeproc-py {grand['citeproc-py']}/{grand['run']}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
