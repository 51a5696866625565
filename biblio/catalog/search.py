"""Full-text search over the cached library: the FTS5 index, relevance and snippets.

One FTS5 row per live top-level item holds its title, creators, abstract, publication,
tags, the plain text of its child notes and the full text of its attachments (both
found on their parent). The table (:mod:`biblio.storage.ddl`) stems words (Porter, so
``paraprofessionals`` finds ``paraprofessional``) and folds accents; it is kept in step
with the cache by a :data:`biblio.events.sync_saved` receiver: the changed items (and
the parents of changed children and attachments) are re-indexed in the sync's
transaction, everything on a full sync. User text never reaches FTS5 raw: it is parsed
by :mod:`biblio.catalog.query` and compiled to quoted terms. Matches are ranked by
bm25 with field weights (:data:`WEIGHTS`: title and creators above tags, abstract
and notes, full text lowest), and :func:`snippets` shows where an item matched, with
the words marked in safe HTML. On PostgreSQL (no FTS5) the same query tree compiles to
``ILIKE`` over title, creators, tags and abstract, titles matching first.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from sqlalchemy import Boolean, and_, bindparam, case, desc, exists, false, not_, or_, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import expression

from biblio import controlchars, events
from biblio import storage as st
from biblio.catalog import query
from biblio.catalog.query import SearchSyntaxError
from biblio.settings import Settings
from biblio.storage import ddl
from biblio.zotero.schema import CONTAINER_FIELDS

log = logging.getLogger(__name__)

COLUMNS = ddl.FTS_COLUMNS
#: bm25 weight of each column: a word in the title or among the creators says more
#: about a work than one in its tags, abstract or notes, and far more than one somewhere
#: in the full text of a PDF.
WEIGHTS = {
    "title": 10.0,
    "creators": 8.0,
    "abstract": 2.5,
    "publication": 1.5,
    "tags": 3.0,
    "notes": 1.0,
    "fulltext": 0.4,
}
#: Where a snippet may come from, in order of preference on a tie, with its label.
SNIPPET_SOURCES = {
    "abstract": "In the abstract",
    "notes": "In a note",
    "fulltext": "In the full text",
    "tags": "In the tags",
    "publication": "In the publication",
}
SNIPPET_TOKENS = 24
# Match markers: control characters, which the index never holds (stripped on the
# way in), so after escaping the snippet they can only be FTS5's own marks.
_OPEN, _CLOSE = "\x02", "\x03"
# Zotero fields that name where an item appeared: its container, publisher or institution.
PUBLICATION_FIELDS = (*CONTAINER_FIELDS, "publisher", "university", "institution")
_TAG_RE = re.compile(r"<[^>]+>")
_BM25 = "bm25(items_fts, 0, " + ", ".join(str(WEIGHTS[c]) for c in COLUMNS) + ")"
_RANK_BM25 = "bm25(items_rank, " + ", ".join(str(WEIGHTS[c]) for c in ddl.RANK_COLUMNS) + ")"

__all__ = [
    "SearchSyntaxError",
    "Snippet",
    "match_clause",
    "ranked_keys",
    "ranked_rowids",
    "reindex",
    "snippets",
]


# -- matching -------------------------------------------------------------------------


def fts_query(q: str) -> str:
    """The FTS5 MATCH expression of search text ``q`` (:class:`SearchSyntaxError`)."""
    return query.fts5(query.parse(q))


def like_pattern(words: Iterable[str]) -> str:
    """An ``ILIKE`` pattern finding ``words`` in order (``%`` and ``_`` escaped)."""
    escaped = [w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for w in words]
    return "%" + "%".join(escaped) + "%"


def _field_clause(field: str | None, pattern: str) -> expression.ColumnElement[bool]:
    i = st.items.c
    title = i.title.ilike(pattern, escape="\\")
    creators = i.creator_summary.ilike(pattern, escape="\\")
    tags = exists().where(
        st.item_tags.c.item_key == i.key, st.item_tags.c.tag.ilike(pattern, escape="\\")
    )
    abstract = i.data["abstractNote"].as_string().ilike(pattern, escape="\\")
    publication = i.data["publicationTitle"].as_string().ilike(pattern, escape="\\")
    by_field: dict[str | None, expression.ColumnElement[bool]] = {
        None: or_(title, creators, tags, abstract),
        "title": title,
        "creator": creators,
        "author": creators,
        "tag": tags,
        "abstract": abstract,
        "publication": publication,
    }
    # Notes and attachments' text are searched by FTS5 only.
    return by_field.get(field, false())


def sql_clause(node: query.Node, field: str | None = None) -> expression.ColumnElement[bool]:
    """``node`` as a WHERE clause for databases without FTS5 (``ILIKE``)."""
    if isinstance(node, query.Term):
        return _field_clause(field, like_pattern(node.words))
    if isinstance(node, query.Scope):
        return sql_clause(node.node, node.field)
    if isinstance(node, query.AnyOf):
        return or_(*(sql_clause(p, field) for p in node.parts))
    if isinstance(node, query.AllOf):
        return and_(
            *(sql_clause(p, field) for p in node.parts),
            *(not_(sql_clause(p, field)) for p in node.without),
        )
    raise SearchSyntaxError("NOT excludes from something else")


class text_match(expression.FunctionElement):  # noqa: N801 (SQL function style)
    """``items.key`` matches the search text: FTS5 on SQLite, ``ILIKE`` elsewhere."""

    type = Boolean()
    inherit_cache = True
    name = "text_match"


def match_clause(q: str) -> expression.ColumnElement[bool]:
    """The WHERE fragment for search text ``q`` (raises :class:`SearchSyntaxError`)."""
    tree = query.parse(q)
    return text_match(bindparam("fts_q", query.fts5(tree)), sql_clause(tree))


@compiles(text_match, "sqlite")
def _match_sqlite(element: text_match, compiler: Any, **kw: Any) -> str:
    fts_arg = list(element.clauses)[0]
    match = compiler.process(fts_arg, **kw)
    # The bound parameter is compiled by SQLAlchemy; no user text is interpolated here.
    return "items.key IN (SELECT key FROM items_fts WHERE items_fts MATCH " + match + ")"  # noqa: S608


@compiles(text_match)
def _match_default(element: text_match, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(list(element.clauses)[1], **kw))


def ranked_rowids(conn: Connection, q: str) -> list[tuple[int, float, float]] | None:
    """``(FTS5 rowid, metadata score, whole-row score)`` of the items matching ``q``
    (None when not on SQLite). Scores are bm25's, lower for better matches: the first
    from ``items_rank`` (title, creators, abstract, publication, tags; 0 when the match
    lies elsewhere), the second over every column, notes and full text included, to
    break ties. Pair the rowids with :func:`index_rowids`, read in the same transaction."""
    if conn.dialect.name != "sqlite":
        return None
    tree = query.parse(q)
    matched = _driver_rows(
        conn,
        f"SELECT rowid, {_BM25} FROM items_fts WHERE items_fts MATCH ?",  # noqa: S608
        (query.fts5(tree),),
    )
    ranking = query.fts5_ranking(tree, ddl.RANK_COLUMNS)
    by_metadata: dict[int, float] = {}
    if ranking is not None and matched:
        by_metadata = dict(
            _driver_rows(
                conn,
                f"SELECT rowid, {_RANK_BM25} FROM items_rank WHERE items_rank MATCH ?",  # noqa: S608
                (ranking,),
            )
        )
    return [(int(r), by_metadata.get(r, 0.0), float(s)) for r, s in matched]


def ranked_keys(conn: Connection, q: str) -> list[str]:
    """Keys of the items matching ``q`` without FTS5: titles matching the whole search
    first, then the newest additions."""
    tree = query.parse(q)
    i = st.items.c
    in_title = case((sql_clause(tree, "title"), 0), else_=1)
    return list(
        conn.execute(
            select(i.key).where(sql_clause(tree)).order_by(in_title, desc(i.date_added), i.key)
        ).scalars()
    )


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


# -- snippets -------------------------------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    """Where an item matched: ``html`` (escaped, matches in ``<mark>``), its field and
    where that is, in words ("In the full text")."""

    html: Markup
    field: str
    label: str

    def to_dict(self) -> dict[str, str]:
        return {"html": str(self.html), "field": self.field, "label": self.label}


def marked(text_with_marks: str) -> Markup:
    """FTS5 output with match markers as safe HTML: everything escaped, then marked."""
    escaped = html.escape(text_with_marks, quote=False)
    return Markup(escaped.replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>"))  # noqa: S704


def snippets(conn: Connection, q: str, keys: list[str]) -> dict[str, Snippet]:
    """For each of ``keys`` that matches ``q`` outside its title and creators, the
    passage with most matched words (SQLite only; empty elsewhere)."""
    if conn.dialect.name != "sqlite" or not keys:
        return {}
    sources = list(SNIPPET_SOURCES)
    calls = ", ".join(
        f"snippet(items_fts, {COLUMNS.index(c) + 1}, char(2), char(3), '…', {SNIPPET_TOKENS})"
        for c in sources
    )
    marks = ", ".join("?" for _ in keys)
    sql = f"SELECT key, {calls} FROM items_fts WHERE items_fts MATCH ? AND key IN ({marks})"  # noqa: S608
    found: dict[str, Snippet] = {}
    for key, *texts in _driver_rows(conn, sql, (fts_query(q), *keys)):  # type: ignore[misc]
        counts = [(t or "").count(_OPEN) for t in texts]
        best = max(range(len(sources)), key=lambda n: (counts[n], -n))
        if counts[best]:
            field = sources[best]
            found[key] = Snippet(marked(texts[best]), field, SNIPPET_SOURCES[field])
    return found


# -- the index ------------------------------------------------------------------------


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
                "fulltext": [],
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
    for parent, content in ddl.fulltext_rows(conn, None if keys is None else found):
        if parent in docs:
            docs[parent]["fulltext"].append(content)
    return [
        {
            k: controlchars.strip(v)
            for k, v in {
                **d,
                "creators": "; ".join(d["creators"]),
                "tags": "; ".join(d["tags"]),
                "notes": "\n".join(d["notes"]),
                "fulltext": "\n".join(d["fulltext"]),
            }.items()
        }
        for d in docs.values()
    ]


def reindex(conn: Connection, keys: Iterable[str] | None) -> int:
    """Re-index ``keys`` (top-level or child keys; ``None`` = everything); return rows."""
    if conn.dialect.name != "sqlite":
        return 0
    if keys is None:
        conn.exec_driver_sql("DELETE FROM items_fts")
        conn.exec_driver_sql("INSERT INTO items_rank (items_rank) VALUES ('delete-all')")
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
        delete = text("DELETE FROM items_fts WHERE key IN :keys").bindparams(
            bindparam("keys", expanding=True)
        )
        for chunk in _chunks(targets):
            ddl.drop_rank(conn, chunk)
            conn.execute(delete, {"keys": chunk})
        # Items deleted from the cache leave no changed key behind: drop their rows.
        ddl.drop_rank(conn, None)
        conn.exec_driver_sql("DELETE FROM items_fts WHERE key NOT IN (SELECT key FROM items)")
    docs = _documents(conn, targets)
    if docs:
        ddl.insert_fts(conn, docs)
        ddl.fill_rank(conn, None if targets is None else [d["key"] for d in docs])
    return len(docs)


def on_sync_saved(_settings: Settings, *, conn: Connection, changed: set[str], full: bool) -> None:
    """Keep the index in step with the cache, in the sync's transaction; a receiver of
    :data:`biblio.events.sync_saved`."""
    if conn.dialect.name == "sqlite" and not ddl.fts_is_current(conn):
        ddl.upgrade_fts(conn)  # a database the migrations have not brought up to date
        full = True
    ddl.create_browse_indexes(conn)
    rows = reindex(conn, None if full else changed)
    log.info("search index: %d item(s) re-indexed%s", rows, " (full)" if full else "")


def subscribe() -> None:
    """Keep the index in step with every sync (idempotent)."""
    events.sync_saved.connect(on_sync_saved)
