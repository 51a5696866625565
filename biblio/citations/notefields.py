"""``Key: value`` lines in a CSL-JSON ``note``, read as variables the way citeproc-js does.

Zotero users put variables CSL has but Zotero lacks into Extra (``original-date: 1859``,
``DOI: 10.1000/x``, ``{:editor: Towheed || Shafquat}``), and CSL-JSON exports carry Extra as
``note``. citeproc-js (``CSL.parseNoteFieldHacks``, on by default) reads leading lines of
that form into the item: dates always, other variables only when the item lacks them,
names as ``family || given`` (or a literal), ``type`` replacing the type; the lines it
reads leave the note. The first line that is neither blank nor of that form ends the
reading (unless it is the very first line). :func:`apply_note_fields` is a port.
"""

from __future__ import annotations

import re
from typing import Any

from biblio.zotero.csljson import parse_date

__all__ = ["apply_note_fields"]

_FIELDS = re.compile(r"\{:(?:[\-_a-z]+|[A-Z]+):[^\}]+\}")
_FIELD = re.compile(r"^([\-_a-z]+|[A-Z]+):\s*([^\}]+)$")
#: citeproc-js CSL.DATE_VARIABLES and CSL.NAME_VARIABLES
DATE_VARIABLES = frozenset(
    [
        "locator-date",
        "issued",
        "event-date",
        "accessed",
        "original-date",
        "publication-date",
        "available-date",
        "submitted",
        "alt-issued",
        "alt-event",
    ]
)
NAME_VARIABLES = frozenset(
    [
        "author",
        "chair",
        "collection-editor",
        "compiler",
        "composer",
        "container-author",
        "contributor",
        "curator",
        "director",
        "editor",
        "editor-translator",
        "editorial-director",
        "executive-producer",
        "guest",
        "host",
        "illustrator",
        "interviewer",
        "narrator",
        "organizer",
        "original-author",
        "performer",
        "producer",
        "recipient",
        "reviewed-author",
        "script-writer",
        "series-creator",
        "translator",
        "commenter",
    ]
)


def _braced(lines: list[str]) -> list[str]:
    """``{:key: value}`` cheater syntax to one field per line."""
    out = []
    for i, line in enumerate(lines):
        found = _FIELDS.findall(line)
        if found:
            rest = _FIELDS.split(line)
            elems = [x for pair in zip(rest, found, strict=False) for x in pair] + [rest[-1]]
            for j in range(1, len(elems), 2):
                before = elems[j - 1]
                # stop converting after text that is not itself a field
                if before.strip() and (i > 0 or j > 1) and not _FIELD.match(before):
                    break
                elems[j] = "\n" + elems[j][2:-1].strip() + "\n"
            line = "".join(elems)
        out.append(line)
    return "\n".join(out).split("\n")


def _date(value: str) -> dict[str, Any]:
    return parse_date(value) or {"literal": value}


def apply_note_fields(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``item`` with the variables its note declares (``item`` if none)."""
    note = item.get("note")
    if not isinstance(note, str) or ":" not in note:
        return item
    out = dict(item)
    lines = _braced(note.split("\n"))
    names: dict[str, list[dict[str, str]]] = {}
    for i, line in enumerate(lines):
        m = _FIELD.match(line)
        if not line.strip():
            continue
        if not m:
            if i == 0:
                continue
            break
        key, value = m.group(1), m.group(2).strip()
        bare = key[4:] if key.startswith("alt-") else key
        if key == "type":
            out["type"] = value
            lines[i] = ""
        elif bare in DATE_VARIABLES:
            out[key] = _date(value)
            lines[i] = ""
        elif not out.get(key):
            if bare in NAME_VARIABLES:
                parts = re.split(r"\s*\|\|\s*", value)
                if len(parts) == 1:
                    names.setdefault(key, []).append({"literal": parts[0]})
                elif len(parts) == 2:
                    names.setdefault(key, []).append({"family": parts[0], "given": parts[1]})
            else:
                out[key] = value
            lines[i] = ""
    out.update(names)
    out["note"] = "\n".join(lines).strip()
    if not out["note"]:
        del out["note"]
    return out
