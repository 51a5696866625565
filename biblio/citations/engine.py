"""biblio's extensions of citeproc-py's CSL element classes and style loader.

citeproc-py maps each CSL element to a Python class through an lxml class lookup. We parse
styles *and* locales with our own lookup in which a few classes are replaced by subclasses
that close gaps against citeproc-js: quotes become markers (so punctuation can move inside
them later), ``initialize="false"`` keeps full given names, number variables with hyphens
(``number-of-pages``) resolve, dates sort by their value, the year suffix is added after the
first rendered year of ``issued``, and the first rendered names can be replaced for
``subsequent-author-substitute``. Per-render switches live in :data:`state`, a thread-local,
because a parsed style is only ever used by one thread at a time.
"""

from __future__ import annotations

import os
import re
import threading

import citeproc
from citeproc import model
from citeproc.frontend import CitationStylesStyle
from citeproc.string import String
from lxml import etree

from .markup import QUOTE, MarkerFormatter

CSL_NS = "http://purl.org/net/xbiblio/csl"


class RenderState(threading.local):
    """Switches for the item being rendered by the current thread."""

    def __init__(self) -> None:
        self.reset()

    def reset(self, phase: str | None = None) -> None:
        self.phase = phase  # "sort", "cite" or "bib"
        self.year_suffix: str | None = None
        self.suffix_done = False
        self.date_var: str | None = None
        self.substitute: str | None = None
        self.substitute_rule = "complete-all"
        self.first_names: str | None = None
        self.names_depth = 0


state = RenderState()


class BiblioText(model.Text):
    def quote(self, string):
        if self.get("quotes", "false").lower() == "true":
            return String(QUOTE[0]) + string + String(QUOTE[1])
        return string


class BiblioNumber(model.Number):
    def process(self, item, context=None, **kwargs):
        variable = self.get("variable")
        if variable in ("locator", "page-first", "page"):
            return super().process(item, context=context, **kwargs)
        value = item.reference[variable.replace("-", "_")]
        return self._process(value, variable)


_INITIAL = re.compile(r"^(\w)\.?$", re.U)


class BiblioName(model.Name):
    def initialize(self, given, mark, context):
        if self.get("initialize", "true").lower() != "false":
            return super().initialize(given, mark, context)
        # CSL 1.0.2 initialize="false": keep full names, only punctuate existing initials
        words = str(given).replace(".", ". ").split()
        text = ""
        prev_initial = False
        for w in words:
            m = _INITIAL.match(w)
            initial = bool(m and m.group(1).isupper())
            if text and not (prev_initial and initial) and not text.endswith(" "):
                text += " "
            text += m.group(1) + mark if initial else w
            prev_initial = initial
        return " ".join(text.split())


class BiblioNames(model.Names):
    def process(self, item, names_context=None, context=None, **kwargs):
        state.names_depth += 1
        try:
            text = super().process(item, names_context=names_context, context=context, **kwargs)
        finally:
            state.names_depth -= 1
        first = state.phase == "bib" and state.names_depth == 0 and state.first_names is None
        if first and text:
            state.first_names = str(text)
            if state.substitute is not None:
                return String(state.substitute)
        return text


class BiblioDate(model.Date):
    def process(self, item, variable=None, show_parts=None, context=None, **kwargs):
        var = variable or self.get("variable")
        if state.phase == "sort" and not self.is_locale_date():
            value = item.reference[var.replace("-", "_")]
            return String(value.sort_key()) if value else None
        outer = state.date_var
        state.date_var = var
        try:
            return super().process(
                item, variable=variable, show_parts=show_parts, context=context, **kwargs
            )
        finally:
            state.date_var = outer


class BiblioDatePart(model.Date_Part):
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


_OVERRIDES = {
    "text": BiblioText,
    "number": BiblioNumber,
    "name": BiblioName,
    "names": BiblioNames,
    "date": BiblioDate,
    "date-part": BiblioDatePart,
}


def _make_parser() -> etree.XMLParser:
    lookup = etree.ElementNamespaceClassLookup()
    namespace = lookup.get_namespace(CSL_NS)
    namespace[None] = model.CitationStylesElement
    for cls in model.CitationStylesElement.__subclasses__():
        namespace[cls.__name__.replace("_", "-").lower()] = cls
    namespace["style"] = BiblioStyleElement
    namespace.update(_OVERRIDES)
    parser = etree.XMLParser(
        remove_comments=True, encoding="UTF-8", no_network=True, resolve_entities=False
    )
    parser.set_element_class_lookup(lookup)
    return parser


_parsers = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parsers are not thread-safe; keep one per thread
    if not hasattr(_parsers, "parser"):
        _parsers.parser = _make_parser()
    return _parsers.parser


def _load_locale(code: str):
    path = os.path.join(citeproc.LOCALES_PATH, f"locales-{code}.xml")
    return etree.parse(path, _parser()).getroot()


class BiblioStyleElement(model.Style):
    def set_locale_list(self, output_locale, validate=False):
        """Locale search order of CSL §Locale Fallback, with locales parsed by our lookup."""
        self.locales = []
        loaded: set[str] = set()

        def in_style(lang):
            expr = f'./cs:locale[@xml:lang="{lang}"]' if lang else "./cs:locale[not(@xml:lang)]"
            self.locales.extend(self.xpath_search(expr)[:1])

        def system(code):
            if code in loaded:
                return
            path = os.path.join(citeproc.LOCALES_PATH, f"locales-{code}.xml")
            if os.path.exists(path):
                self.locales.append(_load_locale(code))
                loaded.add(code)

        language = output_locale.split("-")[0]
        in_style(output_locale)
        in_style(language)
        in_style(None)
        system(output_locale)
        if language in citeproc.PRIMARY_DIALECTS:
            system(citeproc.PRIMARY_DIALECTS[language])
        system("en-US")
        for locale in self.locales:
            locale.style = self


class BiblioStyle(CitationStylesStyle):
    """A parsed CSL style using biblio's element classes and marker formatter."""

    def __init__(self, path: str, locale: str = "en-US") -> None:
        self.xml = etree.parse(path, _parser())
        self.root = self.xml.getroot()
        if not isinstance(self.root, BiblioStyleElement):
            raise ValueError("not a CSL style")
        self.locale = locale
        self.root.set_locale_list(locale)
        self.root.formatter = MarkerFormatter
        self.explicit_year_suffix = bool(
            self.root.xpath('//cs:text[@variable="year-suffix"]', namespaces={"cs": CSL_NS})
        )

    def term(self, name: str, default: str = "") -> str:
        text = self.root.get_single_term(name)
        return str(text) if text else default

    def punctuation_in_quote(self) -> bool:
        value = self.root.get_locale_option("punctuation-in-quote")
        return str(value).lower() == "true"
