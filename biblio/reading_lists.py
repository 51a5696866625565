"""Reading lists: named, ordered selections of items with notes and a short intro.

Anyone may create a list. Creation returns an unguessable public slug (the list's
stable, shareable URL) and a secret edit token; only a SHA-256 hash of the token is
stored, so the database alone never grants editing. Lists reference items by key
without a foreign key, so they survive re-syncs; an item that Zotero deleted (or
that sits in Zotero's trash) stays in the list, shown as "removed from the library"
under the label kept when it was added. Every change bumps ``updated_at``. A list
can be deleted with its edit token; an owner's deletion is audited. Pasted keys are
read forgivingly (:func:`parse_keys`), and :func:`add_items` adds the keys it can and
reports the others, so one bad key never loses the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from biblio import audit, controlchars
from biblio import storage as st
from biblio.catalog.filters import live_items
from biblio.catalog.items import effective_prongs
from biblio.zotero.keys import read_keys

MAX_TITLE = 200
MAX_INTRO = 4000
MAX_NOTE = 2000
MAX_ITEMS = 500
# An edit link as the edit page shows it; slugs and tokens are URL-safe base64.
_EDIT_LINK = re.compile(
    r"/lists/([A-Za-z0-9_-]{1,40})/edit\?(?:[^#\s]*&)?token=([A-Za-z0-9_-]{1,100})"
)


class ListError(ValueError):
    """A change to a list was refused; the message says why."""


@dataclass
class ListEntry:
    key: str
    position: int
    note: str
    label: str
    item: dict[str, Any] | None  # the live cached item row, or None if removed


@dataclass
class ReadingList:
    id: int
    slug: str
    title: str
    intro: str
    created_at: Any
    updated_at: Any
    entries: list[ListEntry] = field(default_factory=list)

    @property
    def live_rows(self) -> list[dict[str, Any]]:
        """Item rows (as ``catalog.iter_items`` gives them) of live entries, in list order."""
        return [e.item for e in self.entries if e.item is not None]

    @property
    def removed(self) -> list[ListEntry]:
        return [e for e in self.entries if e.item is None]

    @property
    def notes(self) -> dict[str, str]:
        return {e.key: e.note for e in self.entries if e.note}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _text(value: str, limit: int, name: str) -> str:
    value = controlchars.strip(value or "").replace("\r\n", "\n").strip()
    if len(value) > limit:
        raise ListError(f"{name} is too long (at most {limit} characters)")
    return value


def check_details(title: str, intro: str = "") -> tuple[str, str]:
    """A new list's title and introduction, cleaned; :class:`ListError` if unusable."""
    title = _text(title, MAX_TITLE, "title")
    if not title:
        raise ListError("a reading list needs a title")
    return title, _text(intro, MAX_INTRO, "intro")


def create_list(engine: Engine, title: str, intro: str = "") -> tuple[str, str]:
    """Create a list; returns ``(slug, edit_token)``. The token is shown once only."""
    title, intro = check_details(title, intro)
    slug, token, now = secrets.token_urlsafe(9), secrets.token_urlsafe(24), st.utcnow()
    with st.transaction(engine) as conn:
        conn.execute(
            insert(st.reading_lists).values(
                slug=slug,
                title=title,
                intro=intro,
                edit_token_hash=_hash(token),
                created_at=now,
                updated_at=now,
            )
        )
    return slug, token


def check_token(engine: Engine, slug: str, token: str | None) -> bool:
    """True if ``token`` is the list's edit token (constant-time comparison)."""
    if not token:
        return False
    with st.connect(engine) as conn:
        stored = conn.execute(
            select(st.reading_lists.c.edit_token_hash).where(st.reading_lists.c.slug == slug)
        ).scalar()
    return stored is not None and hmac.compare_digest(stored, _hash(token))


def _list_row(conn: Connection, slug: str) -> dict[str, Any]:
    row = (
        conn.execute(select(st.reading_lists).where(st.reading_lists.c.slug == slug))
        .mappings()
        .first()
    )
    if row is None:
        raise ListError(f"no reading list {slug!r}")
    return dict(row)


def get_list(engine: Engine, slug: str) -> ReadingList | None:
    """The list with its entries in order; removed items have ``item=None``."""
    i, li = st.items.c, st.reading_list_items.c
    with st.connect(engine) as conn:
        try:
            row = _list_row(conn, slug)
        except ListError:
            return None
        members = (
            conn.execute(
                select(li.item_key, li.position, li.note, li.label)
                .where(li.list_id == row["id"])
                .order_by(li.position, li.item_key)
            )
            .mappings()
            .all()
        )
        keys = [m["item_key"] for m in members]
        live = {
            r["key"]: dict(r)
            for r in conn.execute(
                select(i.key, i.version, i.item_type, i.data, i.meta).where(
                    i.key.in_(keys), live_items()
                )
            ).mappings()
        }
        prongs = effective_prongs(conn, list(live))
    for key, item in live.items():
        item["prongs"] = prongs.get(key, [])
    entries = [
        ListEntry(m["item_key"], m["position"], m["note"], m["label"], live.get(m["item_key"]))
        for m in members
    ]
    return ReadingList(
        row["id"],
        row["slug"],
        row["title"],
        row["intro"],
        row["created_at"],
        row["updated_at"],
        entries,
    )


def _label(item: dict[str, Any]) -> str:
    data = item["data"]
    creators = data.get("creators") or []
    who = ""
    if creators:
        who = creators[0].get("lastName") or creators[0].get("name") or ""
        if len(creators) > 1:
            who += " et al."
    year = (item.get("meta") or {}).get("parsedDate", "")[:4]
    bits = [str(data.get("title") or "[untitled]")]
    if who or year:
        bits.append("(" + ", ".join(b for b in (who, year) if b) + ")")
    return " ".join(bits)[:500]


def item_labels(engine: Engine, keys: list[str]) -> dict[str, str]:
    """``{key: "Title (Creator, Year)"}`` of the live items among ``keys``."""
    i = st.items.c
    with st.connect(engine) as conn:
        rows = conn.execute(
            select(i.key, i.data, i.meta).where(i.key.in_(keys), live_items())
        ).mappings()
        found = {r["key"]: _label(dict(r)) for r in rows}
    return {k: found[k] for k in keys if k in found}


def edit_link_parts(link: str) -> tuple[str, str] | None:
    """``(slug, token)`` of a pasted edit link (``…/lists/<slug>/edit?token=…``), or None."""
    found = _EDIT_LINK.search(link or "")
    return (found.group(1), found.group(2)) if found else None


def _touch(conn: Connection, list_id: int) -> None:
    conn.execute(
        update(st.reading_lists)
        .where(st.reading_lists.c.id == list_id)
        .values(updated_at=st.utcnow())
    )


def _renumber(conn: Connection, list_id: int, keys: list[str]) -> None:
    li = st.reading_list_items.c
    for n, key in enumerate(keys):
        conn.execute(
            update(st.reading_list_items)
            .where(li.list_id == list_id, li.item_key == key)
            .values(position=n)
        )


def _keys(conn: Connection, list_id: int) -> list[str]:
    li = st.reading_list_items.c
    return list(
        conn.execute(
            select(li.item_key).where(li.list_id == list_id).order_by(li.position, li.item_key)
        ).scalars()
    )


def parse_keys(text: str) -> tuple[list[str], list[str]]:
    """``(keys, not understood)`` from pasted text: bare keys in any case, this site's
    item links or Zotero item URLs, separated by anything (:func:`biblio.zotero.keys.read_keys`)."""
    return read_keys(text)


@dataclass
class Added:
    """What :func:`add_items` did with each key it was given."""

    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)  # already in the list
    missing: list[str] = field(default_factory=list)  # no such live item in the library


def add_items(engine: Engine, slug: str, keys: list[str]) -> Added:
    """Append the live items among ``keys`` (already listed ones are skipped); keys of no
    live item are reported, not fatal, so one bad key never loses the others. Refuses
    (adding nothing) only when the list would exceed :data:`MAX_ITEMS`."""
    i, li = st.items.c, st.reading_list_items.c
    result = Added()
    with st.transaction(engine) as conn:
        row = _list_row(conn, slug)
        present = set(_keys(conn, row["id"]))
        asked = list(dict.fromkeys(keys))
        result.present = [k for k in asked if k in present]
        wanted = [k for k in asked if k not in present]
        found = {
            r["key"]: dict(r)
            for r in conn.execute(
                select(i.key, i.data, i.meta).where(i.key.in_(wanted), live_items())
            ).mappings()
        }
        result.missing = [k for k in wanted if k not in found]
        result.added = [k for k in wanted if k in found]
        if len(present) + len(result.added) > MAX_ITEMS:
            raise ListError(f"a reading list holds at most {MAX_ITEMS} items")
        start = (
            conn.execute(
                select(func.coalesce(func.max(li.position), -1)).where(li.list_id == row["id"])
            ).scalar_one()
            + 1
        )
        for n, key in enumerate(result.added):
            conn.execute(
                insert(st.reading_list_items).values(
                    list_id=row["id"],
                    item_key=key,
                    position=start + n,
                    note="",
                    label=_label(found[key]),
                )
            )
        if result.added:
            _touch(conn, row["id"])
    return result


def delete_list(engine: Engine, slug: str, actor: str | None = None) -> str:
    """Delete a list and its entries; returns its title. An owner's deletion (``actor``)
    is audited in the same transaction, with the title and the keys it held."""
    with st.transaction(engine) as conn:
        row = _list_row(conn, slug)
        keys = _keys(conn, row["id"])
        conn.execute(
            delete(st.reading_list_items).where(st.reading_list_items.c.list_id == row["id"])
        )
        conn.execute(delete(st.reading_lists).where(st.reading_lists.c.id == row["id"]))
        if actor is not None:
            audit.record(
                conn,
                actor,
                "list.delete",
                f"list:{slug}",
                old=row["title"],
                detail=f"{len(keys)} item(s): {' '.join(keys)}",
            )
    return str(row["title"])


def remove_item(engine: Engine, slug: str, key: str) -> None:
    li = st.reading_list_items.c
    with st.transaction(engine) as conn:
        row = _list_row(conn, slug)
        conn.execute(
            delete(st.reading_list_items).where(li.list_id == row["id"], li.item_key == key)
        )
        _renumber(conn, row["id"], _keys(conn, row["id"]))
        _touch(conn, row["id"])


def move_item(engine: Engine, slug: str, key: str, offset: int) -> None:
    """Move an item ``offset`` places (negative: up), clamped to the list's ends."""
    with st.transaction(engine) as conn:
        row = _list_row(conn, slug)
        keys = _keys(conn, row["id"])
        if key not in keys:
            raise ListError(f"{key} is not in this list")
        old = keys.index(key)
        new = max(0, min(len(keys) - 1, old + offset))
        keys.insert(new, keys.pop(old))
        _renumber(conn, row["id"], keys)
        _touch(conn, row["id"])


def set_note(engine: Engine, slug: str, key: str, note: str) -> None:
    if save_notes(engine, slug, {key: note}):
        raise ListError(f"{key} is not in this list")


def save_notes(engine: Engine, slug: str, notes: dict[str, str]) -> list[str]:
    """Set several entries' notes in one transaction; returns the keys no longer in the
    list (a co-editor removed them), whose notes are skipped. A note that is too long
    refuses the lot, with the reason."""
    cleaned = {key: _text(note, MAX_NOTE, f"the note on {key}") for key, note in notes.items()}
    if not cleaned:
        return []
    li = st.reading_list_items.c
    gone = []
    with st.transaction(engine) as conn:
        row = _list_row(conn, slug)
        for key, note in cleaned.items():
            done = conn.execute(
                update(st.reading_list_items)
                .where(li.list_id == row["id"], li.item_key == key)
                .values(note=note)
            ).rowcount
            if not done:
                gone.append(key)
        if len(gone) < len(cleaned):
            _touch(conn, row["id"])
    return gone


def update_details(engine: Engine, slug: str, title: str, intro: str) -> None:
    title = _text(title, MAX_TITLE, "title")
    if not title:
        raise ListError("a reading list needs a title")
    intro = _text(intro, MAX_INTRO, "intro")
    with st.transaction(engine) as conn:
        row = _list_row(conn, slug)
        conn.execute(
            update(st.reading_lists)
            .where(st.reading_lists.c.id == row["id"])
            .values(title=title, intro=intro, updated_at=st.utcnow())
        )
