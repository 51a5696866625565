"""Full-text search over the cached library: an SQLite FTS5 index and safe query building.

One FTS5 row per live top-level item holds its title, creators, abstract, publication,
tags and the plain text of its child notes (a note's text is found on its parent). The
index is created by migration ``0002_items_fts`` and kept in step with the cache by a
sync ``after_save`` hook: the changed items (and the parents of changed children) are
re-indexed in the sync's transaction, everything on a full sync. User input never
reaches FTS5 raw: :func:`fts_query` turns it into quoted terms, keeping only prefix
(``libr*``) and phrase (``"faculty status"``) syntax, so no input can cause an FTS
syntax error. On PostgreSQL (no FTS5) :class:`text_match` compiles to ``ILIKE`` over
title and creators instead.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, bindparam, false, or_, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import expression

from biblio import events
from biblio import storage as st
from biblio.settings import Settings
from biblio.storage import ddl

log = logging.getLogger(__name__)

COLUMNS = ddl.FTS_COLUMNS
# Zotero fields that name where an item appeared, in order of preference.
PUBLICATION_FIELDS = (
    "publicationTitle",
    "bookTitle",
    "proceedingsTitle",
    "websiteTitle",
    "blogTitle",
    "forumTitle",
    "encyclopediaTitle",
    "dictionaryTitle",
    "programTitle",
    "seriesTitle",
    "series",
    "publisher",
    "university",
    "institution",
)
MAX_TERMS = 32
_TAG_RE = re.compile(r"<[^>]+>")
_TOKEN_RE = re.compile(r'"([^"]*)"?|(\S+)')
_WORD_RE = re.compile(r"\w+", re.UNICODE)


class SearchSyntaxError(ValueError):
    """The search text has nothing searchable in it (e.g. only punctuation)."""


# -- query building -------------------------------------------------------------------


def fts_query(q: str) -> str:
    """A safe FTS5 MATCH expression for user text ``q`` (terms are ANDed).

    ``"two words"`` is a phrase, a trailing ``*`` makes a prefix; every other
    character is data. Raises :class:`SearchSyntaxError` when nothing searchable is left.
    """
    terms: list[str] = []
    for phrase, word in _TOKEN_RE.findall(q):
        if phrase:
            words = _WORD_RE.findall(phrase)
            if words:
                terms.append('"' + " ".join(words) + '"')
            continue
        prefix = word.endswith("*")
        for i, part in enumerate(_WORD_RE.findall(word)):
            # "o'brien" or "co-operation" become adjacent words, like the tokenizer's.
            terms.append(f'"{part}"')
            if prefix and i == len(_WORD_RE.findall(word)) - 1:
                terms[-1] += "*"
    if not terms:
        raise SearchSyntaxError(f"the search {q!r} has no words to search for")
    return " ".join(terms[:MAX_TERMS])


def like_pattern(q: str) -> str:
    """The ``ILIKE`` pattern of the non-FTS fallback (quotes and ``*`` dropped)."""
    cleaned = q.replace('"', " ").replace("*", " ").strip()
    escaped = cleaned.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class text_match(expression.FunctionElement):  # noqa: N801 (SQL function style)
    """``items.key`` matches the search text: FTS5 on SQLite, ``ILIKE`` elsewhere."""

    type = Boolean()
    inherit_cache = True
    name = "text_match"


def match_clause(q: str) -> expression.ColumnElement[bool]:
    """The WHERE fragment for search text ``q`` (raises :class:`SearchSyntaxError`)."""
    return text_match(bindparam("fts_q", fts_query(q)), bindparam("like_q", like_pattern(q)))


def matching_keys(conn: Connection, q: str) -> list[str]:
    """Keys of the items matching search text ``q``: straight from the FTS5 table on
    SQLite (it only holds live top-level items), else ``ILIKE`` through :func:`match_clause`."""
    if conn.dialect.name == "sqlite":
        return [
            str(k)
            for k in _driver_rows(
                conn, "SELECT key FROM items_fts WHERE items_fts MATCH ?", (fts_query(q),)
            )
        ]
    return list(conn.execute(select(st.items.c.key).where(match_clause(q))).scalars())


def matching_rowids(conn: Connection, q: str) -> list[int] | None:
    """FTS5 rowids of the items matching ``q`` (None when not on SQLite). Reading the
    rowids alone is several times faster than reading the keys stored beside them; pair
    them with :func:`index_rowids`, read in the same transaction."""
    if conn.dialect.name != "sqlite":
        return None
    return [
        int(r)
        for r in _driver_rows(
            conn, "SELECT rowid FROM items_fts WHERE items_fts MATCH ?", (fts_query(q),)
        )
    ]


def index_rowids(conn: Connection) -> list[tuple[int, str]] | None:
    """Every ``(FTS5 rowid, item key)`` of the index (None when not on SQLite)."""
    if conn.dialect.name != "sqlite":
        return None
    return _driver_rows(conn, "SELECT rowid, key FROM items_fts", ())


def _driver_rows(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    # A common word matches half the library: plain driver rows, not SQLAlchemy's.
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return [r[0] for r in rows] if rows and len(rows[0]) == 1 else [tuple(r) for r in rows]


@compiles(text_match, "sqlite")
def _match_sqlite(element: text_match, compiler: Any, **kw: Any) -> str:
    fts_arg = list(element.clauses)[0]
    match = compiler.process(fts_arg, **kw)
    # The bound parameter is compiled by SQLAlchemy; no user text is interpolated here.
    return "items.key IN (SELECT key FROM items_fts WHERE items_fts MATCH " + match + ")"  # noqa: S608


@compiles(text_match)
def _match_default(element: text_match, compiler: Any, **kw: Any) -> str:
    like_arg = list(element.clauses)[1]
    i = st.items.c
    clause = or_(
        i.title.ilike(like_arg, escape="\\"), i.creator_summary.ilike(like_arg, escape="\\")
    )
    return compiler.process(clause, **kw)


# -- the index ------------------------------------------------------------------------


def create_index(conn: Connection) -> None:
    """Create the browse indexes and the FTS5 table (SQLite only), filled from the cache."""
    ddl.create_browse_indexes(conn)
    ddl.create_fts(conn)
    if ddl.has_fts(conn):
        reindex(conn, None)


def note_text(note_html: str) -> str:
    """A note's plain text (tags removed, entities decoded, spaces collapsed)."""
    return " ".join(html.unescape(_TAG_RE.sub(" ", note_html or "")).split())


def _publication(data: dict[str, Any]) -> str:
    return " ".join(str(data[f]) for f in PUBLICATION_FIELDS if data.get(f))


def _chunks(keys: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def _documents(conn: Connection, keys: list[str] | None) -> list[dict[str, Any]]:
    i = st.items.c
    live = (
        i.parent_key.is_(None),
        i.deleted == false(),
        i.item_type.not_in(("note", "attachment", "annotation")),
    )
    docs: dict[str, dict[str, Any]] = {}
    for chunk in [None] if keys is None else _chunks(keys):
        where = live if chunk is None else (*live, i.key.in_(chunk))
        for key, title, data in conn.execute(select(i.key, i.title, i.data).where(*where)):
            data = data or {}
            docs[key] = {
                "key": key,
                "title": title or "",
                "creators": [],
                "tags": [],
                "notes": [],
                "abstract": str(data.get("abstractNote") or ""),
                "publication": _publication(data),
            }
    found = list(docs)
    for chunk in _chunks(found, 900):
        c, t = st.item_creators.c, st.item_tags.c
        for key, name in conn.execute(
            select(c.item_key, c.name).where(c.item_key.in_(chunk)).order_by(c.item_key, c.position)
        ):
            docs[key]["creators"].append(name)
        for key, tag in conn.execute(select(t.item_key, t.tag).where(t.item_key.in_(chunk))):
            docs[key]["tags"].append(tag)
        for parent, data in conn.execute(
            select(i.parent_key, i.data).where(
                i.parent_key.in_(chunk), i.item_type == "note", i.deleted == false()
            )
        ):
            docs[parent]["notes"].append(note_text((data or {}).get("note") or ""))
    return [
        {
            **d,
            "creators": "; ".join(d["creators"]),
            "tags": "; ".join(d["tags"]),
            "notes": "\n".join(d["notes"]),
        }
        for d in docs.values()
    ]


def reindex(conn: Connection, keys: Iterable[str] | None) -> int:
    """Re-index ``keys`` (top-level or child keys; ``None`` = everything); return rows."""
    if conn.dialect.name != "sqlite":
        return 0
    if keys is None:
        conn.exec_driver_sql("DELETE FROM items_fts")
        targets = None
    else:
        wanted = set(keys)
        i = st.items.c
        for chunk in _chunks(sorted(wanted)):
            wanted.update(
                k
                for k in conn.execute(
                    select(i.parent_key).where(i.key.in_(chunk), i.parent_key.is_not(None))
                ).scalars()
            )
        targets = sorted(wanted)
        for chunk in _chunks(targets):
            conn.execute(
                text("DELETE FROM items_fts WHERE key IN :keys").bindparams(
                    bindparam("keys", expanding=True)
                ),
                {"keys": chunk},
            )
        # Items deleted from the cache leave no changed key behind: drop their rows.
        conn.exec_driver_sql("DELETE FROM items_fts WHERE key NOT IN (SELECT key FROM items)")
    docs = _documents(conn, targets)
    if docs:
        conn.execute(
            text(
                "INSERT INTO items_fts (key, title, creators, abstract, publication, "
                "tags, notes) VALUES (:key, :title, :creators, :abstract, "
                ":publication, :tags, :notes)"
            ),
            docs,
        )
    return len(docs)


def on_sync_saved(_settings: Settings, *, conn: Connection, changed: set[str], full: bool) -> None:
    """Keep the index in step with the cache, in the sync's transaction; a receiver of
    :data:`biblio.events.sync_saved`."""
    if conn.dialect.name == "sqlite" and not ddl.has_fts(conn):
        create_index(conn)  # a database from before migration 0002: build it whole
        full = True
    ddl.create_browse_indexes(conn)
    rows = reindex(conn, None if full else changed)
    log.info("search index: %d item(s) re-indexed%s", rows, " (full)" if full else "")


def subscribe() -> None:
    """Keep the index in step with every sync (idempotent)."""
    events.sync_saved.connect(on_sync_saved)
