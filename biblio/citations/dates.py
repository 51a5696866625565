"""CSL dates in biblio's layer: localized formats, ranges, sort keys and year suffixes.

:class:`BiblioDate` renders a localized date with the locale's delimiter (citeproc-py took
the style's, so NLM's "2011 Aug 5" came out "2011Aug5"), joins ranges with the
``range-delimiter`` of the largest differing part, and in sort keys returns citeproc-js's
``1YYYYMMDD`` value (:func:`date_sort_key`) of the parts it renders. :class:`BiblioDatePart`
prints a season for a month-less date and appends the year suffix after the first year of
``issued``. Both are registered in :mod:`.engine`.
"""

from __future__ import annotations

from citeproc.source import DateRange, LiteralDate
from citeproc.string import String

from . import compiled
from .casing import CaseMixin
from .groups import AttemptMixin
from .state import state

CSL_NS = "http://purl.org/net/xbiblio/csl"

__all__ = ["DATE_MARK", "BiblioDate", "BiblioDatePart", "date_sort_key"]

#: brackets a date's sort key inside a date macro's sort key
DATE_MARK = "\x1d"


class BiblioDate(AttemptMixin, compiled.Date):
    def process(self, item, variable=None, show_parts=None, context=None, **kwargs):
        var = variable or self.get("variable")
        if var in state.suppressed:
            return None
        state.used(var)
        if state.phase == "sort" and not self.is_locale_date():
            value = item.reference[var.replace("-", "_")]
            if not value:
                return None
            key = self._sort_key(value)
            # in a sort macro with a date only the dates count (see sorting._item_key)
            return String(DATE_MARK + key + DATE_MARK if state.date_macro else key)
        outer = state.date_var
        state.date_var = var
        try:
            return super().process(
                item, variable=variable, show_parts=show_parts, context=context, **kwargs
            )
        finally:
            state.date_var = outer

    def render_single_date(self, date, show_parts=None, context=None):
        if context is None or context is self or not self.is_locale_date():
            return super().render_single_date(date, show_parts, context)
        # a localized date joins its parts with the locale's delimiter (NLM's "2011 Aug
        # 5"); citeproc-py took the delimiter of the style's cs:date, which has none
        parts = self.parts(date, show_parts, context)
        if not parts:
            return None
        joiner = self if self.get("delimiter") is not None else context
        return joiner.join(parts)

    def render_date_range(self, date_range, show_parts=None, context=None):
        # citeproc-py's range, joined as render_single_date joins a localized date, with
        # the range-delimiter of the largest date part that differs (CSL 1.0.2)
        if context is None or context is self or not self.is_locale_date():
            joiner = context if context is not None else self
        else:
            joiner = self if self.get("delimiter") is not None else context
        show_parts = list(show_parts or ["year", "month", "day"])
        begin, end = date_range.begin, date_range.get("end")
        if end is None or end.is_nil():
            first = self.render_single_date(begin, show_parts, context)
            return first.rstrip() + self._range_delimiter(show_parts) if first else None
        same = []
        for part in ("year", "month", "day"):
            if begin.get(part) != end.get(part):
                break
            if part in show_parts:
                same.append(part)
        differ = [p for p in show_parts if p not in same]
        if not differ:
            return self.render_single_date(begin, show_parts, context)
        first = self.render_single_date(begin, differ, context)
        last = self.render_single_date(end, differ, context)
        if not first:
            return None
        text = first.rstrip() + self._range_delimiter(differ) + (last or "")
        shared = self.render_single_date(end, same, context) if same else None
        return joiner.join([text, shared.rstrip()]) if shared else text

    def _range_delimiter(self, parts: list[str]) -> str:
        for name in ("year", "month", "day"):
            if name in parts:
                for part in self.findall(f"{{{CSL_NS}}}date-part"):
                    if part.get("name") == name:
                        return part.get("range-delimiter", "\u2013")
                break
        return "\u2013"

    def _sort_key(self, value) -> str:
        """citeproc-js's date sort key: only the parts this cs:date renders count.

        ``<date date-parts="year">`` sorts by year alone, so two works of 2019 tie on it
        whatever their months (and the next key, or input order, decides).
        """
        if self.get("form"):
            parts = set(self.get("date-parts", "year-month-day").split("-"))
        else:
            parts = {dp.get("name") for dp in self.findall(f"{{{CSL_NS}}}date-part")}
        return date_sort_key(value, parts)


def date_sort_key(value, parts=frozenset({"year", "month", "day"})) -> str:
    """``1YYYYMMDD`` for the start and the end of a date (citeproc-js dateAsSortKey)."""
    if isinstance(value, LiteralDate) or not hasattr(value, "sort_key"):
        return str(value)
    if isinstance(value, DateRange):
        return _date_key(value.begin, parts) + _date_key(value.get("end"), parts)
    return _date_key(value, parts) + _date_key(None, parts)


def _date_key(date, parts: set[str]) -> str:
    if date is None:
        return "1" + "0" * 8
    year = int(date.get("year", 0) or 0) if "year" in parts else 0
    prefix, year = ("0", 9999 - abs(year)) if year < 0 else ("1", year)
    month = int(date.get("month", 0) or 0) if "month" in parts else 0
    day = int(date.get("day", 0) or 0) if "day" in parts else 0
    return f"{prefix}{year:04d}{month:02d}{day:02d}"


class BiblioDatePart(CaseMixin, compiled.Date_Part):
    def process(self, date, context=None):
        if self.get("name") == "month" and "month" not in date and "season" in date:
            # citeproc-js prints the (long) season term whatever the month form
            ctx = context if context is not None else self
            term = ctx.get_single_term(name=f"season-{int(date['season']):02}")
            if term:
                return term
        return super().process(date, context)

    def markup(self, text):
        out = super().markup(text)
        if (
            out
            and self.get("name") == "year"
            and state.year_suffix
            and not state.suffix_done
            and state.date_var == "issued"
        ):
            state.suffix_done = True
            out = out + String(state.year_suffix)
        return out
