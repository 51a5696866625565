"""biblio's citation layer: CSL styles rendered by citeproc-py with citeproc-js fidelity.

Public API used by the web and export code: :func:`list_styles`, :func:`load_style`,
:func:`list_locales`, :func:`render_bibliography` (a list of :class:`Entry`, one per item,
never failing on a single bad item), :func:`render_citation` (a single entry for "cite as"),
:class:`StyleError`, and :data:`ATTRIBUTION` for the CC BY-SA notice CSL styles and locales
require. Modules: ``styles`` (discovery, cache), ``stylenames`` (a style by the name people
use — ``APA``, ``chicago``, ``vancouver`` — resolved in one place for the web and the CLI,
with menu labels, suggestions and the popularity order), ``compiled`` (citeproc-py's element classes
with their lookups resolved once per style), ``engine``, ``groups``, ``dates`` and ``names``
(biblio's element classes), ``source`` and ``notefields`` (input normalisation),
``sorting`` (collation), ``disambiguation``, ``markup`` (output writers), ``pipeline`` (the
phases of a bibliography), ``render`` (the public functions, in this thread) and ``pool``
(:func:`~.pool.render_parallel`, the per-item phases in a process pool).
"""

from .render import Entry, render_bibliography, render_citation
from .styles import (
    ATTRIBUTION,
    AttributionInfo,
    StyleError,
    StyleInfo,
    list_locales,
    list_styles,
    load_style,
)

__all__ = [
    "ATTRIBUTION",
    "AttributionInfo",
    "Entry",
    "StyleError",
    "StyleInfo",
    "list_locales",
    "list_styles",
    "load_style",
    "render_bibliography",
    "render_citation",
]
