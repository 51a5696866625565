"""CSV and XLSX exports with pandas: one row per item, prongs and tags as columns.

Columns: the Zotero key and type, title, creators ("Last, First; ..."), year and date,
publication, volume, issue, pages, publisher, place, DOI, ISBN, ISSN, URL, abstract,
``prongs`` (effective prongs, "; "-joined), one yes/blank column per prong, ``tags``,
date added and modified; a reading list's export adds ``list_note``, the list's note
on each item. Text that a spreadsheet would run as a formula (starting with
``= + - @``, a tab or a carriage return) is prefixed with an apostrophe, as OWASP advises,
and control characters XML cannot hold are dropped. CSV streams in chunks; XLSX
is one workbook built in memory (the format cannot be streamed).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

import pandas as pd

CHUNK = 500
BASE_COLUMNS = ("key", "item_type", "title", "creators", "year", "date", "publication",
                "volume", "issue", "pages", "publisher", "place", "doi", "isbn", "issn",
                "url", "abstract")  # fmt: skip
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _safe(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = _ILLEGAL_XML.sub("", value)
    return "'" + value if value.startswith(_FORMULA) else value


def _first(data: Mapping[str, Any], *fields: str) -> str:
    return next((str(data[f]).strip() for f in fields if str(data.get(f) or "").strip()), "")


def _creators(data: Mapping[str, Any]) -> str:
    names = []
    for c in data.get("creators") or []:
        if c.get("lastName") is not None:
            name = ", ".join(p for p in (c.get("lastName"), c.get("firstName")) if p)
        else:
            name = str(c.get("name") or "")
        if name:
            kind = c.get("creatorType", "author")
            names.append(name if kind == "author" else f"{name} ({kind})")
    return "; ".join(names)


def row(item: Mapping[str, Any], prong_ids: Sequence[str]) -> dict[str, Any]:
    """The table row of one cached item (``key``, ``item_type``, ``data``, ``meta``, ``prongs``)."""
    data, meta = item["data"], item.get("meta") or {}
    parsed = str(meta.get("parsedDate") or "")
    prongs = [p["prong"] for p in item.get("prongs") or []]
    out: dict[str, Any] = {
        "key": item["key"],
        "item_type": item.get("item_type") or data.get("itemType", ""),
        "title": _first(data, "title"),
        "creators": _creators(data),
        "year": int(parsed[:4]) if parsed[:4].isdigit() else None,
        "date": _first(data, "date"),
        "publication": _first(
            data,
            "publicationTitle",
            "bookTitle",
            "proceedingsTitle",
            "websiteTitle",
            "blogTitle",
            "encyclopediaTitle",
        ),
        "volume": _first(data, "volume"),
        "issue": _first(data, "issue", "number", "reportNumber"),
        "pages": _first(data, "pages"),
        "publisher": _first(data, "publisher", "university", "institution"),
        "place": _first(data, "place"),
        "doi": _first(data, "DOI"),
        "isbn": _first(data, "ISBN"),
        "issn": _first(data, "ISSN"),
        "url": _first(data, "url"),
        "abstract": _first(data, "abstractNote"),
        "prongs": "; ".join(prongs),
    }
    for prong in prong_ids:
        out[f"prong:{prong}"] = "yes" if prong in prongs else ""
    out["tags"] = "; ".join(str(t.get("tag")) for t in data.get("tags") or [] if t.get("tag"))
    out["date_added"] = _first(data, "dateAdded")
    out["date_modified"] = _first(data, "dateModified")
    return {k: _safe(v) for k, v in out.items()}


def columns(prong_ids: Sequence[str], with_notes: bool = False) -> list[str]:
    return [
        *BASE_COLUMNS,
        "prongs",
        *(f"prong:{p}" for p in prong_ids),
        "tags",
        "date_added",
        "date_modified",
        *(["list_note"] if with_notes else []),
    ]


def frame(
    rows: Iterable[Mapping[str, Any]],
    prong_ids: Sequence[str],
    notes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """A DataFrame of item rows with the export's columns (empty frames keep them);
    with ``notes`` (a reading list's, by key, possibly empty) a ``list_note`` column."""
    records = []
    for item in rows:
        record = row(item, prong_ids)
        if notes is not None:
            record["list_note"] = _safe(notes.get(item["key"], ""))
        records.append(record)
    df = pd.DataFrame(records, columns=columns(prong_ids, notes is not None))
    df["year"] = df["year"].astype("Int64")
    return df


def csv_chunks(
    rows: Iterable[Mapping[str, Any]],
    prong_ids: Sequence[str],
    notes: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """The CSV export, header first, then one chunk of text per ``CHUNK`` items."""
    it = iter(rows)
    first = True
    while True:
        batch = list(islice(it, CHUNK))
        if not batch and not first:
            return
        yield frame(batch, prong_ids, notes).to_csv(
            index=False, header=first, lineterminator="\r\n"
        )
        first = False
        if not batch:
            return


def xlsx_bytes(
    rows: Iterable[Mapping[str, Any]],
    prong_ids: Sequence[str],
    sheet: str = "Items",
    notes: Mapping[str, str] | None = None,
) -> bytes:
    """The XLSX workbook of item rows (with a reading list's ``notes`` as a column)."""
    df = frame(rows, prong_ids, notes)
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        df.to_excel(writer, index=False, sheet_name=sheet[:31])
        ws = writer.sheets[sheet[:31]]
        ws.freeze_panes = "A2"
    return buffer.getvalue()
