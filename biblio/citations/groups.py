"""Which parts of a CSL layout render: cs:group suppression, cs:if tests, cs:substitute.

citeproc-py decides cs:group suppression from the XML (any child that *could* call a
variable), ignores ``disambiguate="true"`` and accepts only single numbers as numeric. Here,
as in citeproc-js, every variable-calling element reports to the innermost open group whether
its variable rendered; a cs:if tests ``disambiguate`` against the item's disambiguation state;
``is-numeric`` accepts "2nd", "45-67" and "3 & 4"; and cs:substitute treats a nested
cs:choose as transparent and suppresses whatever variables its winning candidate used.
"""

from __future__ import annotations

import re

from citeproc import model

from . import compiled
from .state import state

_ALWAYS_RENDERED = {"year-suffix", "citation-number", "citation-label"}


class AttemptMixin:
    """Report a variable-calling element to the enclosing cs:group (see :class:`BiblioGroup`)."""

    def render(self, *args, **kwargs):
        variable = self.attr("variable")
        if not variable:
            return super().render(*args, **kwargs)
        text = None
        try:
            text = super().render(*args, **kwargs)
            return text
        finally:
            # year-suffix and citation-number always count as output (citeproc-js), so
            # a "(n.d.)" group ending in an empty year-suffix still prints
            state.attempt(bool(text) or variable in _ALWAYS_RENDERED)


class BiblioGroup(compiled.Group):
    """cs:group suppression decided at render time, as citeproc-js does.

    A group is dropped when a variable was called inside it (directly, in a macro or in the
    branch of a cs:choose actually taken) and none rendered; a group of terms and values
    only is kept. citeproc-py decides from the XML instead, so a choose whose *other*
    branch names a variable made a lone "Publication" term count as content. A failed
    group passes its attempt flag up, a successful one its success (node_group.js).
    """

    def process(self, item, context=None, **kwargs):
        frame = [False, False]
        state.groups.append(frame)
        output = []
        delimiter = self.attr("delimiter", "")
        try:
            for child in self.children():
                try:
                    if isinstance(child, model.Choose):
                        text = child.render(item, context=context, delimiter=delimiter, **kwargs)
                    else:
                        text = child.render(item, context=context, **kwargs)
                except model.VariableError:
                    continue
                if text is not None:
                    output.append(text)
        finally:
            state.groups.pop()
        attempt, success = frame
        parent = state.groups[-1] if state.groups else None
        if output and (success or not attempt):
            if parent is not None:
                parent[1] = True
            return self.join(output)
        if parent is not None:
            parent[0] = attempt
        raise model.VariableError


# CSL term form fallback: verb-short to verb to long, symbol to short to long


_NUMERIC = re.compile(
    r"^\s*[A-Za-z]*\d+[A-Za-z]*(?:\s*(?:[-\u2013,&/]|and)\s*[A-Za-z]*\d+[A-Za-z]*)*\s*$"
)


class NumericTestMixin:
    def _is_numeric(self, item):
        # CSL: "2nd", "45-67", "12, 15" and "3 & 4" are numeric; citeproc-py only
        # accepts a single number
        out = []
        for var in self.get("is-numeric").split():
            value = item.reference.get(var.replace("-", "_"))
            out.append(value is not None and bool(_NUMERIC.match(str(value))))
        return out


class DisambiguateTestMixin:
    """``disambiguate="true"`` holds only for items disambiguation could not otherwise
    tell apart; citeproc-py ignores the test, so such branches always rendered."""

    def matches(self, item, context=None):
        if self.attr("disambiguate") is None:
            return super().matches(item, context)
        wanted = self.get("disambiguate").lower() == "true"
        result = wanted == state.disambiguate
        attrs = {k: v for k, v in self.attrib.items() if k != "disambiguate"}
        match = attrs.get("match", "all")
        if any(k != "match" for k in attrs):
            # the other tests of this element, on an element of their own
            probe = self.__dict__.get("_memo_probe")
            if probe is None:
                probe = self.__dict__["_memo_probe"] = self.makeelement(self.tag, attrs)
            others = probe.matches(item, context)
            if match == "any":
                result = result or others
            elif match == "none":
                result = not result and others
            else:
                result = result and others
        elif match == "none":
            result = not result
        return result


class BiblioIf(DisambiguateTestMixin, NumericTestMixin, compiled.If):
    pass


class BiblioElseIf(DisambiguateTestMixin, NumericTestMixin, compiled.Else_If):
    pass


def _branch_matches(branch, item, context) -> bool:
    """Evaluate a cs:if / cs:else-if condition without rendering its children."""
    matches = getattr(branch, "matches", None)
    return True if matches is None else matches(item, context)


class BiblioSubstitute(compiled.Substitute):
    def _candidates(self, children, item, context):
        # cs:choose inside cs:substitute is transparent: each element of the matching
        # branch is a candidate on its own (citeproc-js)
        for child in children:
            if isinstance(child, model.Choose):
                for branch in child.getchildren():
                    if _branch_matches(branch, item, context):
                        yield from self._candidates(branch.getchildren(), item, context)
                        break
            else:
                yield child

    def render(self, item, context=None, **kwargs):
        # the first candidate that renders wins; every variable it used is suppressed for
        # the rest of the entry (CSL spec, cs:substitute), including those in macros
        outer = self.xpath_search("./parent::cs:names[1]")
        for child in self._candidates(self.getchildren(), item, context):
            bucket: set[str] = set()
            state.recording.append(bucket)
            try:
                if isinstance(child, model.Names) and child.name is None and outer:
                    text = child.render(item, names_context=outer[0], context=context, **kwargs)
                else:
                    text = child.render(item, context=context, **kwargs)
            except model.VariableError:
                continue
            finally:
                state.recording.remove(bucket)
            if text:
                state.suppressed |= bucket
                for v in bucket:
                    state.used(v)
                return text
        return None
