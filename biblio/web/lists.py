"""Reading lists on the web: create, view, export in any style and format, edit.

``/lists/new`` creates a list (rate-limited per address; only a valid form spends the
quota, and a 429 keeps what was typed) and redirects, 303, to its
secret edit link ``/lists/<slug>/edit?token=...``, shown once with a warning to keep
it. ``/lists/<slug>`` is the public, shareable page (``.json`` twin and every export
suffix: ``/lists/<slug>.bib``, ``.docx``, ...) in the list's own order, with notes;
items deleted from the library are shown as "removed from the library". Editing needs
the token (or a signed-in owner); every change is a CSRF-protected POST answered with
a 303 back to the edit page.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from biblio import exports
from biblio import reading_lists as rl
from biblio.catalog.filters import BadParameter
from biblio.citations import ATTRIBUTION, StyleError, list_locales
from biblio.exports import cite as cite_mod
from biblio.storage import app as db
from biblio.web import export as web_export
from biblio.web import responses
from biblio.web.extensions import client_address, refused, spend
from biblio.zotero import keys

bp = Blueprint("lists", __name__)


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _owner() -> bool:
    return bool(getattr(current_app, "login_manager", None)) and current_user.is_authenticated


def _load(slug: str) -> rl.ReadingList:
    if len(slug) > 40:
        abort(404, description="no such reading list")
    found = rl.get_list(db.engine(), slug)
    if found is None:
        abort(404, description=f"no reading list {slug[:40]!r}")
    return found


@bp.route("/lists/new", methods=["GET", "POST"])
def new():  # type: ignore[no-untyped-def]
    error, over = None, None
    if request.method == "POST":
        title, intro = request.form.get("title", ""), request.form.get("intro", "")
        try:
            rl.check_details(title, intro)
            # Only a list that would be created spends the quota (a typo costs nothing).
            limit = current_app.config["BIBLIO"]["lists"]["create_rate_limit"]
            over = spend(limit, "lists-new", client_address())
            if over is None:
                slug, token = rl.create_list(db.engine(), title, intro)
        except rl.ListError as exc:
            error = str(exc)
        if error is None and over is None:
            flash(
                "Reading list created. Keep the edit link below: it is the only way to "
                "change this list.",
                "ok",
            )
            return redirect(url_for("lists.edit", slug=slug, token=token, new=1), 303)
    page = Response(
        render_template(
            "lists/new.html", error=error or (over and over.message), form=request.form
        ),
        400 if error else 200,
    )
    return _private(refused(page, over) if over else page)


def _view(slug: str, fmt: str | None):  # type: ignore[no-untyped-def]
    found = _load(slug)
    options = web_export.render_options(
        title=found.title,
        intro=found.intro,
        notes=found.notes,
        order="input",
        removed=[e.label or e.key for e in found.removed],
        description=f"Reading list: {found.title}",
    )
    if fmt == "json":
        rows = [
            {
                "key": e.key,
                "position": e.position,
                "note": e.note,
                "label": e.label,
                "removed": e.item is None,
            }
            for e in found.entries
        ]
        return responses.envelope(
            rows,
            len(rows),
            None,
            title=found.title,
            intro=found.intro,
            url=url_for("lists.view", slug=slug, _external=True),
        )
    if fmt is not None or web_export.wants_download():
        fmt = fmt or "html"
        spec = exports.FORMATS[fmt]
        try:
            chunks = exports.export(db.engine(), fmt, found.live_rows, options)
        except StyleError as exc:
            raise BadParameter(f"_style: {exc}") from None
        parts = ["list", exports.slug(found.title, 40) or found.slug]
        parts += [options.style] if spec.formatted else []
        return web_export.send(fmt, chunks, exports.filename(parts, fmt))
    try:
        bib = exports.bibliography(db.engine(), found.live_rows, "html", options)
    except StyleError as exc:
        raise BadParameter(f"_style: {exc}") from None
    entries = {e.id: e for e in bib.entries}
    links = [
        (
            label,
            url_for(
                "lists.view_suffix",
                slug=slug,
                suffix=_suffix(f),
                _style=options.style,
                _locale=options.locale,
                _dl=1,
            )
            if f != "html"
            else url_for(
                "lists.view", slug=slug, _style=options.style, _locale=options.locale, _dl=1
            ),
        )
        for f, label in web_export.LINKS
    ]
    return render_template(
        "lists/view.html",
        rl=found,
        entries=entries,
        options=options,
        links=links,
        common=cite_mod.COMMON_STYLES,
        locales=list_locales(),
        attribution=ATTRIBUTION,
        entry_html=exports.documents.page_html,
    )


def _suffix(fmt: str) -> str:
    return {v: k for k, v in exports.BY_SUFFIX.items()}[fmt]


@bp.get("/lists/<slug>")
def view(slug: str):  # type: ignore[no-untyped-def]
    return _view(slug, None)


@bp.get("/lists/<slug>.<suffix>", endpoint="view_suffix")
def view_suffix(slug: str, suffix: str):  # type: ignore[no-untyped-def]
    if suffix == "json":
        return _view(slug, "json")
    if suffix not in exports.BY_SUFFIX:
        abort(404, description=f"unknown format .{suffix[:20]}")
    return _view(slug, exports.BY_SUFFIX[suffix])


def _authorised(slug: str, token: str | None) -> bool:
    return rl.check_token(db.engine(), slug, token) or _owner()


@bp.get("/lists/<slug>/edit")
def edit(slug: str):  # type: ignore[no-untyped-def]
    found = _load(slug)
    token = request.args.get("token") or ""
    if not _authorised(slug, token):
        abort(403, description="this page needs the list's secret edit link")
    edit_url = url_for("lists.edit", slug=slug, token=token, _external=True) if token else ""
    return _private(
        Response(
            render_template(
                "lists/edit.html",
                rl=found,
                token=token,
                edit_url=edit_url,
                is_new=request.args.get("new") == "1",
            )
        )
    )


@bp.post("/lists/<slug>/edit")
def edit_post(slug: str):  # type: ignore[no-untyped-def]
    _load(slug)
    form = request.form
    token = form.get("token") or ""
    if not _authorised(slug, token):
        abort(403, description="this change needs the list's secret edit link")
    action, key = form.get("action", ""), form.get("key", "")
    if action in ("remove", "up", "down", "note") and not keys.is_key(key):
        abort(400, description="key must be a Zotero item key, like ABCD2345")
    engine = db.engine()
    try:
        if action == "details":
            rl.update_details(engine, slug, form.get("title", ""), form.get("intro", ""))
            flash("Title and introduction saved.", "ok")
        elif action == "add":
            added = rl.add_items(engine, slug, rl.parse_keys(form.get("keys", "")))
            flash(f"Added {added} item{'' if added == 1 else 's'}.", "ok")
        elif action == "remove":
            rl.remove_item(engine, slug, key)
            flash("Item removed from the list.", "ok")
        elif action in ("up", "down"):
            rl.move_item(engine, slug, key, -1 if action == "up" else 1)
        elif action == "note":
            rl.set_note(engine, slug, key, form.get("note", ""))
            flash("Note saved.", "ok")
        else:
            abort(400, description=f"unknown action {action[:30]!r}")
    except rl.ListError as exc:
        flash(str(exc), "error")
    target = url_for("lists.edit", slug=slug, token=token or None)
    if action in ("up", "down", "note") and key:
        target += f"#item-{key}"
    return redirect(target, 303)
