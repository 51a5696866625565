"""What sync accepts from Zotero: every answer is checked for shape and completeness.

A hostile or broken answer must never reach the database half-understood, nor move
the library version past objects that did not arrive: a page whose objects are
malformed, a key batch that leaves keys out (Zotero answers every key asked for,
trashed ones included, unless it was deleted), a versions map that is not
``{key: version}``, a ``/deleted`` without its five lists. Each check raises
:class:`~biblio.sync.errors.MalformedResponse` or
:class:`~biblio.sync.errors.IncompleteAnswer`; the client retries those like a 5xx and
the run fails if they persist, leaving the last good cache and version as they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from biblio import controlchars
from biblio.sync.errors import IncompleteAnswer, MalformedResponse
from biblio.zotero.keys import is_key

#: The lists Zotero's ``/deleted`` always answers (zotero/dataserver DeletedController).
DELETED_KINDS = ("collections", "searches", "items", "tags", "settings")
#: Counts Zotero keeps beside an attachment's text.
FULLTEXT_COUNTS = ("indexedChars", "totalChars", "indexedPages", "totalPages")


def _is_version(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_objects(objects: object, kind: str) -> list[dict[str, Any]]:
    """Objects ``{key, version, data}`` as Zotero sends them, or :class:`MalformedResponse`.

    Only what the cache stores is kept: each object's ``links`` and ``library`` would
    otherwise ride along until the objects are staged.
    """
    if not isinstance(objects, list):
        raise MalformedResponse(f"{kind}: expected a JSON list, got {type(objects).__name__}")
    for obj in objects:
        key = obj.get("key") if isinstance(obj, dict) else None
        if not (isinstance(key, str) and is_key(key)):
            raise MalformedResponse(f"{kind}: object with a malformed key {str(key)[:40]!r}")
        version = obj.get("version")
        if not _is_version(version):
            raise MalformedResponse(f"{kind} {key}: malformed version {str(version)[:40]!r}")
        if not isinstance(obj.get("data"), dict):
            raise MalformedResponse(f"{kind} {key}: missing data object")
    return [
        {
            "key": o["key"],
            "version": o["version"],
            "data": o["data"],
            "meta": o.get("meta") if isinstance(o.get("meta"), dict) else {},
        }
        for o in objects
    ]


def check_complete(objects: list[dict[str, Any]], asked: Iterable[str], kind: str) -> None:
    """Every key asked for came back (and nothing else), or :class:`IncompleteAnswer`."""
    wanted = set(asked)
    got = {o["key"] for o in objects}
    missing = wanted - got
    if missing:
        raise IncompleteAnswer(
            f"{kind}: Zotero's answer left out {len(missing)} of the {len(wanted)} keys "
            f"asked for (e.g. {sorted(missing)[0]})"
        )
    if got - wanted:
        raise MalformedResponse(f"{kind}: Zotero's answer holds keys that were not asked for")


def check_versions(versions: object, kind: str) -> dict[str, int]:
    """A ``format=versions`` answer: ``{key: version}`` with well-formed keys."""
    if not isinstance(versions, dict) or not all(
        isinstance(k, str) and is_key(k) and _is_version(v) for k, v in versions.items()
    ):
        raise MalformedResponse(f"{kind}: expected an object of key: version")
    return versions


def check_deleted(deleted: object) -> dict[str, list[str]]:
    """``/deleted``: an object with Zotero's five lists; keys where keys belong."""
    if not isinstance(deleted, dict) or not all(k in deleted for k in DELETED_KINDS):
        raise MalformedResponse(
            "deleted objects: expected an object with the lists " + ", ".join(DELETED_KINDS)
        )
    out: dict[str, list[str]] = {}
    for kind in DELETED_KINDS:
        values = deleted[kind]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise MalformedResponse(f"deleted objects: {kind} is not a list of strings")
        if kind in ("collections", "items", "searches") and not all(is_key(v) for v in values):
            raise MalformedResponse(f"deleted objects: {kind} holds a malformed key")
        out[kind] = values
    return out


def check_fulltext(body: object, key: str) -> dict[str, Any]:
    """``/items/KEY/fulltext``: ``{"content": str, counts…}`` as the row to stage."""
    if not isinstance(body, dict) or not isinstance(body.get("content"), str):
        raise MalformedResponse(f"full text of {key}: expected an object with a content string")
    counts = {}
    for name in FULLTEXT_COUNTS:
        value = body.get(name, 0)
        if not _is_version(value):  # the same rule: a whole number, not negative
            raise MalformedResponse(f"full text of {key}: malformed {name}")
        counts[name] = value or None
    # Text extracted from PDFs carries NULs and lone surrogates that PostgreSQL (and
    # UTF-8) refuse; none of them means anything to a reader or to search.
    return {"content": controlchars.strip(body["content"]), **counts}
