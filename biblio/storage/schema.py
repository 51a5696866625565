"""The cache's schema: every table biblio keeps, as SQLAlchemy Core ``Table`` objects.

Domain modules import these tables and run Core statements through
:func:`biblio.storage.transaction` / :func:`biblio.storage.connect`; nothing else
creates tables (the migrations in :mod:`.migrations` do).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

#: The largest value of an ``Integer`` column (SQLite's and PostgreSQL's BIGINT range):
#: an id beyond it names no row, and SQLite refuses to even compare with it.
MAX_INTEGER = 2**63 - 1


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


migrations_table = Table(
    "migrations",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("applied_at", DateTime, nullable=False),
)

# -- sync ---------------------------------------------------------------------------

sync_state = Table(
    "sync_state",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("library", String(100), nullable=False),  # "groups/12345"
    Column("library_version", Integer, nullable=False, default=0),
    Column("group_version", Integer, nullable=True),
    Column("backoff_until", DateTime, nullable=True),
    Column("last_success_at", DateTime, nullable=True),
    # The library version up to which attachments' full text was synced (None: never).
    Column("fulltext_version", Integer, nullable=True),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
    Column("status", String(20), nullable=False),  # running | ok | unchanged | failed
    Column("trigger", String(20), nullable=False, default="manual"),
    Column("full", Boolean, nullable=False, default=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("added", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("deleted", Integer, nullable=False, default=0),
    Column("trashed", Integer, nullable=False, default=0),
    Column("collections_changed", Integer, nullable=False, default=0),
    Column("requests", Integer, nullable=False, default=0),
    Column("restarts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    # Saves retried because the database was busy, and what the run wants owners to know
    # (a wait for the database, a Backoff that slowed it down).
    Column("save_retries", Integer, nullable=False, default=0),
    Column("note", Text, nullable=True),
)

group_info = Table(
    "group_info",
    metadata,
    Column("id", Integer, primary_key=True),  # the Zotero group ID
    Column("version", Integer, nullable=False),
    Column("name", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),  # HTML from Zotero
    Column("type", String(20), nullable=True),
    Column("url", Text, nullable=True),
    Column("owner", Integer, nullable=True),
    Column("admins", JSON, nullable=False, default=list),
    Column("members", JSON, nullable=False, default=list),
    Column("data", JSON, nullable=False),
    Column("fetched_at", DateTime, nullable=False),
)

# -- library cache ------------------------------------------------------------------

items = Table(
    "items",
    metadata,
    Column("key", String(16), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("item_type", String(40), nullable=False),
    Column("parent_key", String(16), nullable=True, index=True),  # notes/attachments
    Column("title", Text, nullable=False, default=""),
    Column("creator_summary", Text, nullable=False, default=""),
    Column("date", Text, nullable=False, default=""),  # Zotero's free-text date
    Column("parsed_date", String(10), nullable=True),  # meta.parsedDate
    Column("year", Integer, nullable=True, index=True),
    Column("date_added", String(25), nullable=True, index=True),
    Column("date_modified", String(25), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),  # in Zotero's trash
    Column("data", JSON, nullable=False),  # the full Zotero `data` object
    Column("meta", JSON, nullable=False, default=dict),
    Column("synced_at", DateTime, nullable=False),
)
Index("ix_items_type_deleted", items.c.item_type, items.c.deleted)

item_creators = Table(
    "item_creators",
    metadata,
    Column("item_key", String(16), ForeignKey("items.key", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("creator_type", String(40), nullable=False),
    Column("name", Text, nullable=False),  # "Last, First" or the single-field name
    Column("last_name", Text, nullable=True),
    Column("first_name", Text, nullable=True),
)
Index("ix_item_creators_name", item_creators.c.name)

item_tags = Table(
    "item_tags",
    metadata,
    Column("item_key", String(16), ForeignKey("items.key", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(255), primary_key=True),
    Column("type", Integer, nullable=False, default=0),
)
Index("ix_item_tags_tag", item_tags.c.tag)

collections = Table(
    "collections",
    metadata,
    Column("key", String(16), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("parent_key", String(16), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("data", JSON, nullable=False),
    Column("synced_at", DateTime, nullable=False),
)

item_collections = Table(
    "item_collections",
    metadata,
    Column("item_key", String(16), ForeignKey("items.key", ondelete="CASCADE"), primary_key=True),
    Column("collection_key", String(16), primary_key=True, index=True),
)

item_fulltext = Table(  # the text Zotero indexed from an attachment (a PDF, a web page)
    "item_fulltext",
    metadata,
    Column("item_key", String(16), ForeignKey("items.key", ondelete="CASCADE"), primary_key=True),
    Column("parent_key", String(16), nullable=True, index=True),  # the item it belongs to
    Column("version", Integer, nullable=False),  # the library version of the text
    Column("content", Text, nullable=False, default=""),
    Column("indexed_chars", Integer, nullable=True),
    Column("total_chars", Integer, nullable=True),
    Column("indexed_pages", Integer, nullable=True),
    Column("total_pages", Integer, nullable=True),
)


def _staging(table: Table, *extra: Column) -> Table:
    """A staging twin of ``table``: the same columns, no foreign keys or indexes.

    A sync streams what it fetches into these in short transactions and applies them
    to the real tables in one final transaction, so memory does not grow with the
    library and the write lock is held only for the apply.
    """
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in table.columns
    ]
    return Table(f"sync_stage_{table.name}", metadata, *columns, *extra)


stage_items = _staging(items, Column("change", String(1), nullable=True))  # a(dded) | u(pdated)
stage_item_creators = _staging(item_creators)
stage_item_tags = _staging(item_tags)
stage_item_collections = _staging(item_collections)
stage_collections = _staging(collections)
stage_fulltext = _staging(item_fulltext)
stage_deleted = Table(  # what /deleted (or a full sync's listing) says is gone
    "sync_stage_deleted",
    metadata,
    Column("kind", String(20), primary_key=True),  # items | collections | tags | fulltext
    Column("key", String(255), primary_key=True),  # a key, or a tag name
)

# -- prongs -------------------------------------------------------------------------

item_prongs = Table(  # computed by the tagger; rebuilt on retag
    "item_prongs",
    metadata,
    Column("item_key", String(16), ForeignKey("items.key", ondelete="CASCADE"), primary_key=True),
    Column("prong", String(40), primary_key=True),
    Column("score", Float, nullable=False),
    Column("source", String(20), nullable=False),  # rules | model | zotero-tag | -collection
    Column("reasons", JSON, nullable=False),
    Column("item_version", Integer, nullable=False),
)
Index("ix_item_prongs_prong", item_prongs.c.prong)

prong_doubts = Table(  # borderline verdicts for owners to review; rebuilt with item_prongs
    "prong_doubts",
    metadata,
    Column("item_key", String(16), ForeignKey("items.key", ondelete="CASCADE"), primary_key=True),
    Column("prong", String(40), primary_key=True),
    Column("verdict", String(12), nullable=False),  # model-only | vetoed | weak | near-miss
    Column("probability", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("assigned", Boolean, nullable=False),
    Column("item_version", Integer, nullable=False),
)
Index("ix_prong_doubts_prong", prong_doubts.c.prong)

prong_overrides = Table(  # owners' decisions; never touched by sync or retag
    "prong_overrides",
    metadata,
    Column("item_key", String(16), primary_key=True),  # no FK: survives deletion/re-sync
    Column("prong", String(40), primary_key=True),
    Column("action", String(10), nullable=False),  # add | remove
    Column("by", String(255), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("note", Text, nullable=True),
)

data_changes = Table(  # one row; SQLite triggers count every write to prongs and overrides
    "data_changes",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("n", Integer, nullable=False, default=0),
)

# -- citations and reading lists ----------------------------------------------------

rendered_citations = Table(
    "rendered_citations",
    metadata,
    Column("item_key", String(16), ForeignKey("items.key", ondelete="CASCADE"), primary_key=True),
    Column("style", String(200), primary_key=True),
    Column("locale", String(20), primary_key=True),
    Column("fmt", String(10), primary_key=True),  # html | text
    Column("item_version", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("sort_key", Text, nullable=True),
    Column("context", String(64), nullable=False, default=""),  # style file + set context
    Column("group_key", Text, nullable=False, default=""),  # items that render together
    Column("error", Text, nullable=True),  # set when the fallback rendering was used
)

citation_styles_used = Table(  # which renders people ask for, so a sync pre-renders them
    "citation_styles_used",
    metadata,
    Column("style", String(200), primary_key=True),
    Column("locale", String(20), primary_key=True),
    Column("fmt", String(10), primary_key=True),
    Column("last_used", DateTime, nullable=False),
)

reading_lists = Table(
    "reading_lists",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String(40), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("intro", Text, nullable=False, default=""),
    Column("edit_token_hash", String(128), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

reading_list_items = Table(
    "reading_list_items",
    metadata,
    Column(
        "list_id", Integer, ForeignKey("reading_lists.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("item_key", String(16), primary_key=True),  # no FK: shows "removed" if gone
    Column("position", Integer, nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("label", Text, nullable=False, default=""),  # "Title (Year)", kept if removed
)

# -- owners, join requests, audit, outbox -------------------------------------------

owners = Table(
    "owners",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(512), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime, nullable=True),
    Column("last_login_at", DateTime, nullable=True),
)

join_requests = Table(
    "join_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("status", String(20), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("email", String(320), nullable=False, index=True),
    Column("zotero_username", String(255), nullable=True),
    Column("zotero_user_id", Integer, nullable=True, index=True),
    Column("affiliation", Text, nullable=False, default=""),
    Column("prongs", JSON, nullable=False, default=list),
    Column("reason", Text, nullable=False),
    Column("decision_reason", Text, nullable=True),
    Column("owner_note", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("decided_at", DateTime, nullable=True),
    Column("decided_by", String(320), nullable=True),
)

owner_sessions = Table(  # server-side login sessions: the cookie holds only the token
    "owner_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("owner_id", Integer, ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index("ix_owner_sessions_owner", "owner_id"),
)

login_throttle = Table(  # failed logins per (email tried, address) and the lockouts earned
    "login_throttle",
    metadata,
    # Any email tried, owner or not: the same counting for both reveals nothing.
    Column("account", String(320), primary_key=True),
    Column("address", String(64), primary_key=True),  # "*" counts the account from anywhere
    Column("failures", Integer, nullable=False, default=0),
    Column("lockouts", Integer, nullable=False, default=0),  # in a row: each one doubles
    Column("locked_until", DateTime, nullable=True),
    Column("last_failure_at", DateTime, nullable=True),
)

rate_limits = Table(  # Flask-Limiter's fixed-window counters, shared by every worker
    "rate_limits",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),  # seconds since the epoch
)

audit_log = Table(  # append-only: no code path updates or deletes rows
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("actor", String(320), nullable=False),
    Column("action", String(60), nullable=False),
    Column("subject", String(100), nullable=False),  # e.g. "request:12", "item:ABCD1234"
    Column("old", Text, nullable=True),
    Column("new", Text, nullable=True),
    Column("detail", Text, nullable=True),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime, nullable=False),
    Column("to_addr", String(320), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(10), nullable=False, default="pending"),  # pending|sent|failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("sent_at", DateTime, nullable=True),
    UniqueConstraint("id"),
)
