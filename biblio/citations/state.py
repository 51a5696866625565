"""Per-render switches shared by biblio's CSL element classes (see :mod:`.engine`).

citeproc-py keeps no per-item context, so what the rules of citeproc-js need while one item
renders (the phase, its year suffix, the names shown, disambiguation levels, the variables a
cs:substitute used, the open cs:group frames) lives in :data:`state`, a thread-local: a parsed
style is only ever used by one thread at a time.
"""

from __future__ import annotations

import threading


class RenderState(threading.local):
    """Switches for the item being rendered by the current thread."""

    def __init__(self) -> None:
        self.reset()

    def reset(self, phase: str | None = None) -> None:
        self.phase = phase  # "sort", "cite" or "bib"
        self.year_suffix: str | None = None
        self.suffix_done = False
        self.date_var: str | None = None
        # rendering the sort key of a macro with a cs:date: only its dates count
        self.date_macro = False
        self.substitute: str | None = None
        # positions in the first name list to replace by ``substitute`` (complete-each,
        # partial-each, partial-first); None replaces the whole list (complete-all)
        self.substitute_positions: set[int] | None = None
        # variable attribute of the cs:names that printed the first names
        self.names_var: str | None = None
        # a cs:label rendered inside a cs:names of the entry
        self.names_label = False
        self.first_names: tuple | None = None
        # the name lists behind the first cs:names a citation rendered (disambiguation)
        self.cite_names: tuple | None = None
        # the names that citation showed (after et-al), as name parts
        self.cite_shown: tuple = ()
        # print the given names of the first name list in full (givenname disambiguation)
        self.full_given = False
        self.names_depth = 0
        self.language: str | None = None
        # variables already used by cs:substitute, suppressed for the rest of the entry
        self.suppressed: set[str] = set()
        self.recording: list[set[str]] = []
        # cs:name options overridden for the name list being rendered
        self.name_options: dict = {}
        # names shown by the cs:names being rendered (subsequent-author-substitute)
        self.rendered_names: list[tuple] = []
        # names to show in the first name list (disambiguate-add-names), used once
        self.add_names: int | None = None
        # the value of the cs:if disambiguate="true" test for the item being rendered
        self.disambiguate = False
        # one [variable_attempt, variable_success] frame per cs:group being rendered
        self.groups: list[list[bool]] = []

    def used(self, variable: str) -> None:
        for bucket in self.recording:
            bucket.add(variable)

    def attempt(self, rendered: bool) -> None:
        """An element calling a variable ran inside the innermost cs:group."""
        if self.groups:
            self.groups[-1][0] = True
            if rendered:
                self.groups[-1][1] = True


state = RenderState()
