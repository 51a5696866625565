"""Reading lists on the web: create, view, export in any style and format, edit, delete.

``/lists/new`` creates a list (rate-limited per address; only a valid form spends the
quota, and a 429 keeps what was typed) and redirects, 303, to its
secret edit link ``/lists/<slug>/edit?token=...``, shown once with a warning to keep
it. ``/lists/<slug>`` is the public, shareable page (``.json`` twin and every export
suffix: ``/lists/<slug>.bib``, ``.docx``, ...) in the list's own order, with notes;
items deleted from the library are shown as "removed from the library". Editing needs
the token (or a signed-in owner): the edit page is one CSRF-protected form, so every
button saves whatever was typed anywhere on it (notes, title) before doing its own
job, answered with a 303 back to the edit page. ``/lists/<slug>/delete`` asks, then
deletes. Adding from the library: every item row and item page links to
``/lists/add?key=KEY`` (pick a list, or start one, without JavaScript); ``lists.js``
turns those links into one-click buttons posting to ``/lists/<slug>/items.json`` with
the edit token the browser remembers (``/lists/mine``). A list in a style, shown or
exported, comes through :mod:`biblio.web.renders` like any bibliography (cache, render
budget, 202 while it is prepared, the per-client render limit).
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from biblio import exports
from biblio import reading_lists as rl
from biblio.catalog.filters import BadParameter
from biblio.citations import ATTRIBUTION, Entry, StyleError, list_locales
from biblio.storage import app as db
from biblio.web import export as web_export
from biblio.web import renders, responses
from biblio.web.extensions import client_address, csrf, limiter, refused, spend
from biblio.zotero.keys import is_key

bp = Blueprint("lists", __name__)

#: Keys one request may add (a page of results at most).
MAX_ADD = 100
#: What a paste the list could not use keeps of it, for the box (the session is a cookie).
MAX_KEPT_PASTE = 1500


def _create_limit() -> str:
    return current_app.config["BIBLIO"]["lists"]["create_rate_limit"]


def _not_creating() -> bool:
    return request.form.get("action") != "new"


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


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


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


@bp.get("/lists/mine")
def mine():  # type: ignore[no-untyped-def]
    """The lists this browser remembers: drawn by ``lists.js`` from its own storage."""
    return render_template("lists/mine.html")


def _entry_rows(found: rl.ReadingList) -> list[dict[str, Any]]:
    return [
        {
            "key": e.key,
            "position": e.position,
            "note": e.note,
            "label": e.label,
            "removed": e.item is None,
        }
        for e in found.entries
    ]


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
        rows = _entry_rows(found)
        return responses.envelope(
            rows,
            len(rows),
            None,
            title=found.title,
            intro=found.intro,
            url=url_for("lists.view", slug=slug, _external=True),
        )
    back = url_for("lists.view", slug=slug)
    if fmt is not None or web_export.wants_download():
        fmt = fmt or "html"
        spec = exports.FORMATS[fmt]
        ready = None
        if spec.formatted:
            got = _rendered(found, options, spec.render_fmt, page=False, back=back)
            if isinstance(got, Response):
                return got
            ready = got
        try:
            chunks = exports.export(db.engine(), fmt, found.live_rows, options, ready)
        except StyleError as exc:
            raise BadParameter(f"_style: {exc}") from None
        parts = ["list", exports.slug(found.title, 40) or found.slug]
        parts += [options.style] if spec.formatted else []
        return web_export.send(fmt, chunks, exports.filename(parts, fmt))
    got = _rendered(found, options, "html", page=True, back=back)
    if isinstance(got, Response):
        return got
    entries = {e.id: e for e in got}
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
        choices=web_export.style_menu(options.style),
        style_label=web_export.style_label(options.style),
        locales=list_locales(),
        attribution=ATTRIBUTION,
        entry_html=exports.documents.page_html,
    )


def _rendered(
    found: rl.ReadingList, options: exports.Options, fmt: str, *, page: bool, back: str
) -> list[Entry] | Response:
    try:
        return renders.entries_or_answer(
            lambda: found.live_rows, options, fmt, page=page, back=back
        )
    except StyleError as exc:
        raise BadParameter(f"_style: {exc}") from None


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


def _paste_key(slug: str) -> str:
    return f"paste:{slug}"


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
                paste=session.pop(_paste_key(slug), ""),
            )
        )
    )


def _action(form: MultiDict[str, str]) -> tuple[str, str]:
    """``(action, key)``: buttons send ``up:KEY``; a plain form sends ``action`` and ``key``."""
    action, _, key = form.get("action", "").partition(":")
    return action, key or form.get("key", "")


def _typed_notes(form: MultiDict[str, str]) -> dict[str, str]:
    """The notes whose text differs from what the page showed (``note:KEY`` beside
    ``note_was:KEY``), so a co-editor's newer note is never overwritten by a stale one."""
    changed = {}
    for name, value in form.items():
        kind, _, key = name.partition(":")
        if kind == "note" and is_key(key) and value != form.get(f"note_was:{key}", value + "!"):
            changed[key] = value
    return changed


def _save_typed(slug: str, form: MultiDict[str, str]) -> bool:
    """Save what was typed on the page, whichever button sent it; True if anything was."""
    engine, saved = db.engine(), False
    notes = _typed_notes(form)
    if form.get("action") == "note" and form.get("key"):  # one note, posted on its own
        notes[form["key"]] = form.get("note", "")
    try:
        gone = rl.save_notes(engine, slug, notes)
        saved = len(notes) > len(gone)
        for key in gone:
            flash(f"The note on {key} was not saved: that item is no longer in the list.", "error")
    except rl.ListError as exc:
        flash(str(exc), "error")
    title, intro = form.get("title"), form.get("intro")
    if title is not None and (title != form.get("title_was") or intro != form.get("intro_was")):
        try:
            rl.update_details(engine, slug, title, intro or "")
            saved = True
        except rl.ListError as exc:
            flash(str(exc), "error")
    return saved


def _add(slug: str, text: str) -> None:
    keys, unread = rl.parse_keys(text)
    result = rl.add_items(db.engine(), slug, keys[:MAX_ADD])
    if result.added or not (result.present or result.missing or unread):
        flash(f"Added {_plural(len(result.added), 'item')}.", "ok")
    if result.present:
        flash(f"Already in the list: {', '.join(result.present)}.", "ok")
    problems = [f"no item with key {k} in the library" for k in result.missing]
    problems += [f"not a key or an item link: {piece!r}" for piece in unread]
    if problems:
        flash("Not added — " + "; ".join(problems) + ". The box keeps them to fix.", "error")
        session[_paste_key(slug)] = "\n".join(result.missing + unread)[:MAX_KEPT_PASTE]


@bp.post("/lists/<slug>/edit")
def edit_post(slug: str):  # type: ignore[no-untyped-def]
    _load(slug)
    form = request.form
    token = form.get("token") or ""
    if not _authorised(slug, token):
        abort(403, description="this change needs the list's secret edit link")
    action, key = _action(form)
    if action not in ("save", "details", "add", "remove", "up", "down", "note"):
        abort(400, description=f"unknown action {action[:30]!r}")
    if action in ("remove", "up", "down") and not is_key(key):
        abort(400, description="key must be a Zotero item key, like ABCD2345")
    engine = db.engine()
    saved = _save_typed(slug, form)
    anchor = f"item-{key}" if key and action in ("up", "down", "note") else ""
    try:
        if action in ("save", "details", "note"):
            flash("Changes saved." if saved else "Nothing to save: nothing was changed.", "ok")
        elif action == "add":
            _add(slug, form.get("keys", ""))
            anchor = "add-heading"
        elif action == "remove":
            rl.remove_item(engine, slug, key)
            flash(
                "Item removed from the list." + (" Your changes were saved." if saved else ""), "ok"
            )
        else:
            rl.move_item(engine, slug, key, -1 if action == "up" else 1)
    except rl.ListError as exc:
        flash(str(exc), "error")
    target = url_for("lists.edit", slug=slug, token=token or None)
    return redirect(target + (f"#{anchor}" if anchor else ""), 303)


@bp.route("/lists/<slug>/delete", methods=["GET", "POST"])
def delete(slug: str):  # type: ignore[no-untyped-def]
    found = _load(slug)
    token = request.values.get("token") or ""
    if not _authorised(slug, token):
        abort(403, description="deleting a list needs its secret edit link")
    if request.method == "GET":
        return _private(Response(render_template("lists/delete.html", rl=found, token=token)))
    by_token = rl.check_token(db.engine(), slug, token)
    title = rl.delete_list(db.engine(), slug, None if by_token else str(current_user.email))
    flash(f"Reading list “{title}” deleted.", "ok")
    return redirect(url_for("lists.mine"), 303)


def _wanted_keys() -> list[str]:
    keys = [k for k in request.values.getlist("key") if is_key(k)][:MAX_ADD]
    if not keys:
        raise BadParameter("key: name the item to add, as /lists/add?key=ABCD2345")
    return keys


@bp.route("/lists/add", methods=["GET", "POST"])
@limiter.shared_limit(
    _create_limit, scope="lists-create", methods=["POST"], exempt_when=_not_creating
)
def add():  # type: ignore[no-untyped-def]
    """Pick a list for an item (or start one): the way to add without JavaScript."""
    keys = _wanted_keys()
    labels = rl.item_labels(db.engine(), keys)
    if not labels:
        abort(404, description=f"no item with key {keys[0]} in the library")
    error = None
    if request.method == "POST":
        try:
            slug, token, created, message = _add_from_picker(list(labels))
        except rl.ListError as exc:
            error = str(exc)
        else:
            flash(message, "ok")
            target = url_for("lists.edit", slug=slug, token=token, new=1 if created else None)
            return redirect(target + "#items-heading", 303)
    page = render_template("lists/add.html", labels=labels, error=error, form=request.form)
    return _private(Response(page, 400 if error else 200))


def _add_from_picker(keys: list[str]) -> tuple[str, str, bool, str]:
    """``(slug, token, created, message)`` after adding ``keys`` to a new or pasted list."""
    form, engine = request.form, db.engine()
    if form.get("action") == "new":
        slug, token = rl.create_list(engine, form.get("title", ""))
        rl.add_items(engine, slug, keys)
        return slug, token, True, "Reading list created. Keep its edit link: only it can change it."
    # A remembered list's button and the pasted link share the name; the first one set wins.
    link = next((v for v in form.getlist("edit_link") if v.strip()), "")
    parts = rl.edit_link_parts(link)
    if parts is None:
        raise rl.ListError("paste the list's edit link, the one that ends with ?token=…")
    slug, token = parts
    if not rl.check_token(engine, slug, token):
        raise rl.ListError("that edit link does not open a list here (was it deleted?)")
    result = rl.add_items(engine, slug, keys)
    if result.added:
        return slug, token, False, f"Added {_plural(len(result.added), 'item')}."
    return slug, token, False, "Already in the list."


@bp.post("/lists/<slug>/items.json")
@csrf.exempt  # the edit token in the body is the credential; no cookie grants anything
def add_json(slug: str):  # type: ignore[no-untyped-def]
    """Add items by key: ``{"token": ..., "keys": [...]}`` → the list's entries."""
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        abort(400, description='send JSON: {"token": "<edit token>", "keys": ["ABCD2345"]}')
    _load(slug)
    if not rl.check_token(db.engine(), slug, str(body.get("token") or "")[:100]):
        abort(403, description="this change needs the list's secret edit link")
    keys, unread = rl.parse_keys(" ".join(str(k)[:200] for k in body["keys"][:MAX_ADD]))
    try:
        result = rl.add_items(db.engine(), slug, keys)
    except rl.ListError as exc:
        abort(409, description=str(exc))
    found = _load(slug)
    rows = _entry_rows(found)
    return _private(
        responses.envelope(
            rows,
            len(rows),
            None,
            title=found.title,
            added=result.added,
            present=result.present,
            missing=result.missing,
            unread=unread,
        )
    )
