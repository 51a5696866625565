"""Deterministic synthetic Zotero group libraries for tests, benchmarks and the demo.

:func:`synthetic_library` builds a :class:`~biblio.standin.library.StandinLibrary` of N
items (top-level items plus child notes and attachments) in nested collections, with
varied item types, creators (two-part and single-field names), tags (manual and
automatic), free-text dates and the odd hostile value a real library holds (HTML in a
title, an empty title, unicode) and, on request, the indexed full text of stored
attachments. The same seed always gives the same library, and
50k items build in well under a few seconds because objects are created directly with
their versions instead of through the one-write-per-call mutation API.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from biblio.standin.fulltext import can_have_fulltext
from biblio.standin.library import LOAD_BATCH, StandinLibrary
from biblio.zotero.keys import KEY_ALPHABET

_LAST = [
    "Smith",
    "Müller",
    "García",
    "Nakamura",
    "Okafor",
    "Kowalski",
    "Haddad",
    "Lindqvist",
    "Rossi",
    "Chen",
    "Dubois",
    "O'Brien",
    "Novák",
    "Silva",
    "Ivanova",
    "Andersen",
    "Tanaka",
    "Nguyen",
    "Kaplan",
    "Ferreira",
]
_FIRST = [
    "Ada",
    "Bruno",
    "Chloé",
    "Dmitri",
    "Emeka",
    "Fatima",
    "Gustav",
    "Hana",
    "Ingrid",
    "Jorge",
    "Kwame",
    "Lena",
    "Mateo",
    "Noor",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Yuki",
]
_ORGS = [
    "World Health Organization",
    "OECD",
    "Zotero Working Group",
    "Office for National Statistics",
    "Comité européen de normalisation",
]
_WORDS = [
    "climate",
    "adaptation",
    "urban",
    "resilience",
    "networks",
    "governance",
    "evidence",
    "synthesis",
    "learning",
    "policy",
    "health",
    "equity",
    "data",
    "infrastructure",
    "community",
    "methods",
    "review",
    "participation",
    "water",
    "energy",
    "transition",
    "archives",
    "memory",
    "migration",
]
_TAGS = [f"{w}" for w in _WORDS] + [f"prong:{p}" for p in ("pathways", "practice", "policy")]
_JOURNALS = [
    "Nature",
    "Journal of Urban Studies",
    "Revue d’économie",
    "PLOS ONE",
    "Global Environmental Change",
]
_TYPES = [  # (itemType, weight, extra fields builder name)
    ("journalArticle", 40),
    ("book", 12),
    ("bookSection", 10),
    ("conferencePaper", 10),
    ("report", 10),
    ("thesis", 4),
    ("webpage", 6),
    ("document", 4),
    ("preprint", 4),
]
_DATE_FORMS = [
    "{y}-{m:02d}-{d:02d}",
    "{y}",
    "{mon} {y}",
    "{d} {mon} {y}",
    "Spring {y}",
    "{y}-00-00 {y}",
    "{y}/{m}/{d}",
    "",
]
_MON = "January February March April May June July August September October November December"


def _creators(rng: random.Random, item_type: str) -> list[dict[str, Any]]:
    role = "editor" if item_type == "book" and rng.random() < 0.2 else "author"
    out: list[dict[str, Any]] = []
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4, 6))):
        if rng.random() < 0.07:
            out.append({"creatorType": role, "name": rng.choice(_ORGS)})
        else:
            out.append(
                {
                    "creatorType": role,
                    "firstName": rng.choice(_FIRST),
                    "lastName": rng.choice(_LAST),
                }
            )
    if item_type == "bookSection":
        out.append(
            {
                "creatorType": "editor",
                "firstName": rng.choice(_FIRST),
                "lastName": rng.choice(_LAST),
            }
        )
    return out if rng.random() > 0.02 else []


def _title(rng: random.Random, i: int) -> str:
    r = rng.random()
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 9)))
    if r < 0.01:
        return ""
    if r < 0.03:
        return f"On <i>{words}</i> &amp; <sub>2</sub> effects"
    if r < 0.05:
        return f"{words.capitalize()} — naïve 日本語 ✓ #{i}"
    return words.capitalize()


def _date(rng: random.Random) -> str:
    y, m, d = rng.randint(1985, 2025), rng.randint(1, 12), rng.randint(1, 28)
    mon = _MON.split()[m - 1]
    return rng.choice(_DATE_FORMS).format(y=y, m=m, d=d, mon=mon)


def _type_fields(rng: random.Random, item_type: str, i: int) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if item_type in ("journalArticle", "preprint"):
        f.update(
            publicationTitle=rng.choice(_JOURNALS),
            volume=str(rng.randint(1, 80)),
            issue=str(rng.randint(1, 12)),
            pages=f"{rng.randint(1, 300)}-{rng.randint(301, 400)}",
        )
        if rng.random() < 0.7:
            f["DOI"] = f"10.{rng.randint(1000, 9999)}/synthetic.{i}"
    elif item_type in ("book", "bookSection"):
        f.update(
            publisher=rng.choice(("Routledge", "MIT Press", "Éditions du Seuil")),
            place=rng.choice(("London", "Cambridge, MA", "Paris")),
        )
        if item_type == "bookSection":
            f["bookTitle"] = "Handbook of " + rng.choice(_WORDS)
        else:
            f["ISBN"] = f"978-{rng.randint(0, 9)}-{rng.randint(1000, 9999)}-{i % 1000:03d}-{i % 10}"
    elif item_type == "conferencePaper":
        f["proceedingsTitle"] = "Proceedings of the " + rng.choice(_WORDS).title() + " Conference"
    elif item_type == "report":
        f.update(institution=rng.choice(_ORGS), reportNumber=f"WP-{i}")
    elif item_type == "thesis":
        f.update(
            university="University of " + rng.choice(("Leeds", "Oslo", "Lagos")),
            thesisType=rng.choice(("PhD thesis", "Master's thesis")),
        )
    elif item_type == "webpage":
        f["websiteTitle"] = rng.choice(("Blog", "Policy Hub", "News"))
    if rng.random() < 0.5:
        f["url"] = f"https://example.org/{item_type}/{i}"
    return f


def synthetic_library(
    n_items: int,
    n_collections: int | None = None,
    seed: int = 0,
    children_ratio: float = 0.15,
    group_id: int = 1,
    fulltext: int = 0,
) -> StandinLibrary:
    """A deterministic library of ``n_items`` items in total, children included.

    ``children_ratio`` of the items are child notes/attachments of earlier top-level
    items; ``n_collections`` defaults to about one per 40 items (at least 3), a third
    of them nested. Versions come in runs of 50 objects, like a library built by uploads.
    ``fulltext`` stored attachments (the first ones) get indexed text, written after
    the items in runs of 50 (``ValueError`` if the library has fewer such attachments).
    """
    rng = random.Random(seed)
    if n_collections is None:
        n_collections = max(3, n_items // 40)
    lib = StandinLibrary(
        {
            "id": group_id,
            "name": "Synthetic research group",
            "owner": 1001,
            "description": "<p>A <b>synthetic</b> library for tests &amp; benchmarks.</p>",
            "admins": [1002],
            "members": [1003, 1004],
            "type": "PublicClosed",
            "url": "https://example.org/group",
            "libraryReading": "all",
            "libraryEditing": "members",
            "fileEditing": "members",
            "created": "2019-01-15T10:00:00Z",
        },
        seed=seed,
    )
    used: set[str] = set()

    def key() -> str:
        while True:
            k = "".join(rng.choices(KEY_ALPHABET, k=8))
            if k not in used:
                used.add(k)
                return k

    count = 0

    def version() -> int:
        nonlocal count
        count += 1
        return 1 + (count - 1) // LOAD_BATCH

    coll_keys: list[str] = []
    for c in range(n_collections):
        parent = rng.choice(coll_keys) if coll_keys and rng.random() < 0.33 else False
        ck = key()
        lib._put(
            "c",
            {
                "key": ck,
                "version": version(),
                "name": f"{rng.choice(_WORDS).title()} {c}",
                "parentCollection": parent,
                "relations": {},
            },
        )
        coll_keys.append(ck)

    types, weights = zip(*_TYPES, strict=True)
    base = datetime(2019, 1, 15, tzinfo=UTC)
    n_children = int(n_items * children_ratio)
    n_top = max(0, n_items - n_children)
    top_keys: list[str] = []
    for i in range(n_items):
        added = base + timedelta(minutes=int(i * 37 + rng.randint(0, 30)))
        modified = added + timedelta(days=rng.randint(0, 400), seconds=rng.randint(0, 86399))
        stamp = {
            "dateAdded": added.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dateModified": modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        k = key()
        if i < n_top or not top_keys:
            item_type = rng.choices(types, weights)[0]
            tags: list[dict[str, Any]] = [{"tag": t} for t in rng.sample(_TAGS, rng.randint(0, 4))]
            if rng.random() < 0.2:
                tags.append({"tag": rng.choice(_WORDS).upper(), "type": 1})
            data = {
                "key": k,
                "version": version(),
                "itemType": item_type,
                "title": _title(rng, i),
                "creators": _creators(rng, item_type),
                "abstractNote": ""
                if rng.random() < 0.4
                else f"Abstract {i}: " + " ".join(rng.choice(_WORDS) for _ in range(30)),
                "date": _date(rng),
                "language": rng.choice(("en", "fr", "")),
                "extra": "",
                "tags": tags,
                "collections": rng.sample(
                    coll_keys, min(len(coll_keys), rng.choice((0, 1, 1, 2, 3)))
                ),
                "relations": {},
                **_type_fields(rng, item_type, i),
                **stamp,
            }
            top_keys.append(k)
        elif rng.random() < 0.5:
            size = 8_000 if rng.random() < 0.002 else rng.randint(1, 20)
            data = {
                "key": k,
                "version": version(),
                "itemType": "note",
                "parentItem": rng.choice(top_keys),
                "note": f"<p>Note {i}: " + ("reading notes <b>bold</b> " * size) + "</p>",
                "tags": [],
                "relations": {},
                **stamp,
            }
        else:
            linked = rng.random() < 0.3
            data = {
                "key": k,
                "version": version(),
                "itemType": "attachment",
                "parentItem": rng.choice(top_keys),
                "linkMode": "linked_url" if linked else "imported_file",
                "title": "Full Text PDF" if not linked else "Snapshot",
                "accessDate": stamp["dateAdded"],
                "url": f"https://example.org/files/{i}.pdf" if linked else "",
                "note": "",
                "contentType": "application/pdf" if not linked else "text/html",
                "charset": "",
                "tags": [],
                "relations": {},
                **stamp,
            }
            if not linked:
                data["filename"] = f"paper-{i}.pdf"
        lib._put("i", data)
    lib.version = 1 + (count - 1) // LOAD_BATCH if count else 0
    _add_fulltext(lib, rng, fulltext)
    return lib


def _add_fulltext(lib: StandinLibrary, rng: random.Random, n: int) -> None:
    stored = [k for k, d in lib.items.items() if can_have_fulltext(d)][:n]
    if len(stored) < n:
        raise ValueError(f"only {len(stored)} stored attachments can carry full text, not {n}")
    base = lib.version
    for i, key in enumerate(stored):
        pages = rng.randint(1, 40)
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(200, 1500)))
        text = f"Synthetic full text {i} of {key}. {words}."
        lib.fulltext.put(
            key, text, {"indexedPages": pages, "totalPages": pages}, base + 1 + i // LOAD_BATCH
        )
    if stored:
        lib.version = base + 1 + (len(stored) - 1) // LOAD_BATCH
