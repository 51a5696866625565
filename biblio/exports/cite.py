"""One item's "cite" box.

:func:`cite` formats a single live item in any CSL style, as HTML and as plain text,
straight through the citation layer (a lone citation has no set to disambiguate
against, so it is never the cached bibliography entry, which may carry "2017a").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from biblio import storage as st
from biblio.catalog.filters import NON_REGULAR
from biblio.catalog.items import get_item
from biblio.citations import render_citation
from biblio.citations.styles import resolve_locale
from biblio.zotero.csljson import to_csl


def cite(
    engine: Engine,
    key: str,
    style: str,
    locale: str = "en-US",
    styles_dir: str | Path | None = None,
) -> dict[str, Any] | None:
    """``{key, title, style, locale, html, text, csl}`` for a live item, else None.

    Raises :class:`~biblio.citations.StyleError` for an unknown or broken style.
    """
    with st.connect(engine) as conn:
        item = get_item(conn, key)
    if item is None or item["deleted"] or item["parent_key"] or item["item_type"] in NON_REGULAR:
        return None
    code = resolve_locale(locale) or "en-US"
    csl = to_csl(item["data"], key)
    return {
        "key": key,
        "title": item["title"],
        "style": style,
        "locale": code,
        "html": render_citation(csl, style, code, "html", styles_dir),
        "text": render_citation(csl, style, code, "text", styles_dir),
        "csl": csl,
    }
