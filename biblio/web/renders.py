"""Formatted bibliographies for requests: from the cache, rendered within a budget, or
"being prepared".

Every view that shows or exports a bibliography in a style (``/bibliography``, its
``.json`` twin and the formatted ``/items.*`` exports, reading lists and their exports)
asks :func:`entries_or_answer`, which goes through :func:`biblio.citations.flight.obtain`:
cached entries come at once and cost nothing; a request that would render spends one
use of ``[web] render_rate_limit`` from its address (429 on the styled error page, or
JSON); up to ``[citations] render_budget_entries`` missing entries render inline, shared
with identical requests; more start (or join) a background render and the answer is 202:
a page that says how far it is and refreshes itself, or for JSON and exports a JSON
body, both with ``Retry-After``. Once ready, the same URL is served from the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import Response, current_app, render_template, request

from biblio import exports
from biblio.citations import Entry, flight
from biblio.storage import app as db
from biblio.web import responses
from biblio.web.extensions import Refusal, client_address, refused, spend

#: Seconds a "being prepared" answer asks the client to wait before asking again.
RETRY_AFTER = 5


def entries_or_answer(
    rows: Callable[[], Sequence[Mapping[str, Any]]],
    options: exports.Options,
    fmt: str,
    *,
    page: bool,
    back: str = "/items",
) -> list[Entry] | Response:
    """The entries of the item ``rows`` (loaded only if needed) in ``options``' style and
    ``fmt``, or the response to send instead (202 while they are prepared, 429 over the
    limit). ``page``: answer "being prepared" with the HTML page (else JSON); ``back``:
    where that page links."""
    key = f"{fmt}:{request.full_path}"
    waiting = flight.progress(db.engine(), key)
    if waiting is not None:  # asked again while its render is under way
        return _preparing(waiting, options, page, back)
    settings = db.settings()
    cit = settings["citations"]
    refusal: Refusal | None = None

    def permit() -> bool:
        nonlocal refusal
        refusal = spend(settings["web"]["render_rate_limit"], "render", client_address())
        return refusal is None

    outcome = flight.obtain(
        db.engine(),
        rows(),
        options.style,
        options.locale,
        fmt,
        options.styles_dir,
        order=options.order,
        budget=int(cit["render_budget_entries"]),
        background=int(cit["background_renders"]),
        busy_timeout=float(settings["database"]["busy_timeout_seconds"]),
        permit=permit,
        request_key=key,
    )
    if outcome.refused and refusal is not None:
        body, status = responses.error_response(refusal.message, 429)
        return refused(current_app.make_response((body, status)), refusal)
    if outcome.entries is not None:
        return outcome.entries
    return _preparing(outcome, options, page, back)


def _preparing(
    outcome: flight.Outcome, options: exports.Options, page: bool, back: str
) -> Response:
    message = (
        f"This bibliography is being prepared in {options.style} ({options.locale}): "
        f"{outcome.done} of {outcome.total} entries are done. "
        f"Ask again in {RETRY_AFTER} seconds."
    )
    if page and not responses.wants_json():
        response = current_app.make_response(
            (
                render_template(
                    "export/preparing.html",
                    outcome=outcome,
                    options=options,
                    retry_after=RETRY_AFTER,
                    back=back,
                    title=options.title,
                ),
                202,
            )
        )
    else:
        response = responses.json_response(
            {
                "ok": True,
                "status": 202,
                "preparing": True,
                "message": message,
                "style": options.style,
                "locale": options.locale,
                "done": outcome.done,
                "total": outcome.total,
                "url": request.full_path if request.query_string else request.path,
            },
            202,
        )
    response.headers["Retry-After"] = str(RETRY_AFTER)
    response.headers["Cache-Control"] = "no-store"
    return response
