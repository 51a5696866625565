"""Attachments' full text in the Zotero API stand-in, with Zotero's version rules.

Zotero indexes the text of stored attachments (PDFs, snapshots, EPUBs) and serves it
to sync clients: ``GET /fulltext?since=V`` lists ``{attachmentKey: version}`` of the
texts written after library version V, ``GET /items/KEY/fulltext`` answers
``{"content": …}`` plus the non-zero counts ``indexedChars``/``totalChars`` (documents)
or ``indexedPages``/``totalPages`` (PDFs) with ``Last-Modified-Version`` set to the
text's own version. As on Zotero's dataserver (``Zotero_FullText``), writing a text is
a library write (the library version moves and the text takes it), only attachments
that are not ``linked_url`` can have one, and deleting the attachment deletes its text.
:class:`FullTextStore` holds the texts of one :class:`~biblio.standin.library.StandinLibrary`,
which owns the lock and the versioning.
"""

from __future__ import annotations

from typing import Any

#: The counts Zotero keeps beside a text; only non-zero ones are served.
COUNTS = ("indexedChars", "totalChars", "indexedPages", "totalPages")


def can_have_fulltext(data: dict[str, Any] | None) -> bool:
    """Whether Zotero keeps full text for this item: an attachment that is not a link."""
    return (
        data is not None
        and data.get("itemType") == "attachment"
        and data.get("linkMode") != "linked_url"
    )


class FullTextStore:
    """``{attachment key: {"content", "version", counts…}}`` of one library."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def put(self, key: str, content: str, counts: dict[str, int], version: int) -> None:
        record: dict[str, Any] = {"content": str(content), "version": int(version)}
        for name in COUNTS:
            if counts.get(name):
                record[name] = int(counts[name])
        self.records[key] = record

    def drop(self, keys: list[str]) -> None:
        for key in keys:
            self.records.pop(key, None)

    def since(self, version: int) -> dict[str, int]:
        """``{key: version}`` of the texts written after ``version``."""
        return {k: r["version"] for k, r in self.records.items() if r["version"] > version}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def load(self, raw: dict[str, Any], default_version: int) -> int:
        """Read the file format (``{key: {"content", counts…, "version"?}}``); texts
        without a version get ``default_version``. Returns the highest version."""
        top = 0
        for key, rec in raw.items():
            version = int(rec.get("version") or default_version)
            counts = {n: int(rec[n]) for n in COUNTS if rec.get(n)}
            self.put(key, str(rec.get("content") or ""), counts, version)
            top = max(top, version)
        return top

    def dump(self) -> dict[str, dict[str, Any]]:
        return {k: dict(r) for k, r in self.records.items()}


def fulltext_body(record: dict[str, Any]) -> dict[str, Any]:
    """The JSON Zotero answers for ``/items/KEY/fulltext``: content and non-zero counts."""
    body: dict[str, Any] = {"content": record["content"]}
    for name in COUNTS:
        if record.get(name):
            body[name] = record[name]
    return body
