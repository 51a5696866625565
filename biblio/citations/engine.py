"""biblio's extensions of citeproc-py's CSL element classes and style loader.

citeproc-py maps each CSL element to a Python class through an lxml class lookup. We parse
styles *and* locales with our own lookup in which a few classes are replaced by subclasses
that close gaps against citeproc-js: quotes become markers (so punctuation can move inside
them later), ``initialize="false"`` keeps full given names, number variables with hyphens
(``number-of-pages``) resolve, and the first rendered names can be replaced for
``subsequent-author-substitute``, names follow et-al, add-names and sort-order rules, number
variables are read as citeproc-js reads them. Group, condition and substitute rules live in
:mod:`.groups`, dates in :mod:`.dates`, name initials and scripts in :mod:`.names`; the
cached lookups all classes share in :mod:`.compiled`; per-render switches in :mod:`.state`.
"""

from __future__ import annotations

import os
import re
import threading

import citeproc
from citeproc import model
from citeproc.frontend import CitationStylesStyle
from citeproc.source import Name
from citeproc.string import String
from lxml import etree

from . import compiled
from .casing import CaseMixin
from .dates import BiblioDate, BiblioDatePart
from .groups import (
    AttemptMixin,
    BiblioElseIf,
    BiblioGroup,
    BiblioIf,
    BiblioSubstitute,
)
from .markup import QUOTE, MarkerFormatter
from .names import LATIN, NON_LATIN, initialize, script_class
from .numbers import NUMBER_VARS, RANGE_VARS, dash_ranges, is_plural
from .state import RenderState, state
from .subtitles import uppercase_subtitles, wants_uppercase_subtitles

__all__ = ["CSL_NS", "BiblioStyle", "RenderState", "state"]

CSL_NS = "http://purl.org/net/xbiblio/csl"


class PageRangeMixin:
    """CSL page-range-format (expanded, minimal, minimal-two, chicago) on digit strings."""

    def _format_last_page(self, first, last):
        fmt = self.get_root().get_option("page-range-format")
        if not (first.isdigit() and last.isdigit()) or len(last) > len(first):
            return last
        if len(last) < len(first):  # "321-28" means 321-328
            last = first[: len(first) - len(last)] + last
        if fmt in ("chicago", "chicago-15", "chicago-16"):
            return _chicago_last_page(int(first), int(last), fmt)
        if fmt not in ("minimal", "minimal-two"):
            return last
        common = 0
        while common < len(first) and first[common] == last[common]:
            common += 1
        keep = len(first) - common
        if fmt == "minimal-two":
            keep = max(keep, 2)
        keep = min(max(keep, 1), len(last))
        return last[len(last) - keep :]


def _chicago_last_page(begin: int, end: int, fmt: str) -> str:
    """citeproc-js chicago15 ("chicago") and chicago16 page-range rules."""
    if fmt == "chicago-16":
        if begin > 100 and begin % 100:
            for i in range(2, len(str(end))):
                if begin // 10**i == end // 10**i:
                    return str(end % 10**i)
        return str(end)
    if begin > 100 and begin % 100 and begin // 100 == end // 100:
        return str(end % 100)
    if begin >= 10000:
        return str(end % 1000)
    return str(end)


_TERM_FALLBACK = {"verb-short": "verb", "verb": None, "symbol": "short", "short": None}


class TermFallbackMixin:
    """A missing term form falls back as CSL says (citeproc-py returns no term at all),
    so ``form="verb-short"`` of ``reviewed-author`` prints the verb form "by"."""

    def get_term(self, name, form=None, *args, **kwargs):
        while True:
            term = super().get_term(name, form, *args, **kwargs)
            if term is not None or form is None or form not in _TERM_FALLBACK:
                return term
            form = _TERM_FALLBACK[form]


_TITLES = ("title", "container-title")


class BiblioText(AttemptMixin, TermFallbackMixin, CaseMixin, PageRangeMixin, compiled.Text):
    def _variable(self, item, context):
        variable = self.get("variable")
        if variable in state.suppressed:
            return None
        state.used(variable)
        text = super()._variable(item, context)
        if (
            variable in _TITLES
            and type(text) is String
            and self.get_root().uppercase_subtitles
            and self.attr("form") != "short"
            and self.attr("text-case") in (None, "normal")
        ):
            # Zotero's capitalised subtitles for APA-family styles (see .subtitles)
            short = item.reference.get("title_short") if variable == "title" else None
            text = String(uppercase_subtitles(str(text), short, main_title=variable == "title"))
        if variable in RANGE_VARS and type(text) is String:
            # citeproc-js prints a numeric range in an issue or number with the range
            # delimiter, as it does for pages
            delimiter = self.get_single_term("page-range-delimiter") or "\u2013"
            dashed = dash_ranges(str(text), variable, item.reference.type, str(delimiter))
            if dashed != str(text):
                text = String(dashed)
        return text

    def quote(self, string):
        if self.attr("quotes", "false").lower() == "true":
            return String(QUOTE[0]) + string + String(QUOTE[1])
        return string


class BiblioNumber(AttemptMixin, CaseMixin, PageRangeMixin, compiled.Number):
    def process(self, item, context=None, **kwargs):
        variable = self.get("variable")
        if variable in state.suppressed:
            return None
        state.used(variable)
        if variable in ("locator", "page-first", "page"):
            return super().process(item, context=context, **kwargs)
        value = item.reference[variable.replace("-", "_")]
        return self._process(value, variable)


_ET_AL_MARK = "\x1e"


class BiblioName(compiled.Name):
    def process(self, item, variable, context=None, sort_options=None, **kwargs):
        names = item.reference.get(variable) or []
        saved = state.name_options
        opts: dict = {}
        state.name_options = opts
        if state.phase == "sort":
            # sort keys hold every name in sort order and no "and" (citeproc-js)
            opts["name-as-sort-order"] = "all"
            opts["and"] = None
        if names and state.full_given and state.phase == "bib":
            # given names disambiguation needed in full are printed in full in the
            # bibliography too (citeproc-js givens level 2), in the first name list
            state.full_given = False
            opts["initialize-with"] = None
        if names and all("literal" in n for n in names):
            # citeproc-js joins institutions with its own implicit cs:institution, whose
            # delimiter-precedes-last is the default "contextual": "A and B", "A, B, and C"
            opts["delimiter-precedes-last"] = "contextual"
        swapped = None
        if (
            state.substitute_positions
            and state.phase == "bib"
            and state.first_names is None
            and variable in item.reference
        ):
            # subsequent-author-substitute by name: the names to replace render as the
            # substitute string, delimiters and "and" stay (citeproc-js name_node.children)
            offset = len(state.rendered_names)
            swapped = names
            item.reference[variable] = [
                Name(literal=state.substitute) if offset + i in state.substitute_positions else n
                for i, n in enumerate(names)
            ]
        scripted = self._by_script(item.reference.get(variable) or [], item, context, sort_options)
        if scripted is not None:
            swapped = names if swapped is None else swapped
            item.reference[variable] = scripted
        try:
            et_min = self.get_option("et-al-min", context, sort_options)
            use_first = self.get_option("et-al-use-first", context, sort_options)
            if names and state.add_names is not None and state.phase in ("cite", "bib"):
                # disambiguate-add-names: the first name list shows as many names as
                # disambiguation asked for (citeproc-js _imposeNameConstraints)
                wanted, state.add_names = state.add_names, None
                if wanted > use_first and et_min and len(names) >= et_min:
                    if wanted >= len(names):
                        opts["et-al-min"] = et_min = len(names) + 1
                    else:
                        opts["et-al-use-first"] = use_first = wanted
            text = super().process(
                item, variable, context=context, sort_options=sort_options, **kwargs
            )
            shown = list(names)
            if len(names) > 1 and et_min and len(names) >= et_min:
                shown = names[:use_first]
                use_last = self.get_option("et-al-use-last", context, sort_options)
                if use_last and use_first <= et_min - 2:
                    shown.append(names[-1])
            state.rendered_names.extend(tuple(n.parts()) for n in shown)
        finally:
            state.name_options = saved
            if swapped is not None:
                item.reference[variable] = swapped
        if state.phase == "sort" and text is not None and _ET_AL_MARK in str(text):
            # sort keys hold the names kept after et-al truncation, not the et-al term
            text = String(re.sub(r"[\s,;]*" + _ET_AL_MARK, "", str(text)))
        return text

    def et_al(self):
        if state.phase == "sort":
            return String(_ET_AL_MARK)
        return super().et_al()

    def get_option(self, name, context=None, sort_options=None):
        if name in state.name_options:
            return state.name_options[name]
        value = super().get_option(name, context, sort_options)
        if name == "demote-non-dropping-particle" and value == "sort-only":
            # "van der Maaten" prints as it is but sorts under M (citeproc-js)
            return "display-and-sort" if state.phase == "sort" else "never"
        return value

    def _by_script(self, names, item, context, sort_options) -> list | None:
        """Names in scripts without a given/family order of their own, written the
        citeproc-js way (:func:`.names.script_class`); None when there are none."""
        if self.get_option("form", context, sort_options) != "long":
            return None
        language = item.reference.get("language")
        out, changed = [], False
        for name in names:
            family = name.get("family")
            if "literal" in name or not family:
                out.append(name)
                continue
            given = name.get("given")
            kind = script_class(family, given, language)
            if kind == LATIN:
                out.append(name)
                continue
            ndp = name.get("non-dropping-particle")
            if kind == NON_LATIN:
                text = "".join(p for p in (ndp, family, given) if p)
            else:
                mark = self.get_option("initialize-with", context, sort_options)
                if given and mark is not None and self.get("initialize", "true") != "false":
                    hyphen = self.get_option("initialize-with-hyphen", context, sort_options)
                    given = initialize(given, mark, hyphen)
                text = " ".join(p for p in (ndp, family, given) if p)
            out.append(Name(family=text))
            changed = True
        return out if changed else None

    def initialize(self, given, mark, context):
        # citeproc-js initials: "Jung-ran" is "J.", "K-Lee" is "K.-L."; with
        # initialize="false" names stay whole and only initials get the mark ("K.-Lee")
        hyphen = self.get_option("initialize-with-hyphen", context)
        whole = self.get("initialize", "true").lower() == "false"
        return initialize(str(given), mark, hyphen, normalize=whole)


def _implicit_name(names) -> None:
    """Give a cs:names without a cs:name the default one, once.

    citeproc-py inserts a plain ``model.Name`` outside the CSL namespace instead, on
    every render: it never finds it again (the tree grew by one element per entry) and
    biblio's name rules did not apply to it.
    """
    if names.name is not None:
        return
    name = names.makeelement(f"{{{CSL_NS}}}name", {})
    names.insert(0, name)
    names.__dict__["name"] = name  # keeps the proxy (and its caches) alive
    names.__dict__.pop("_memo_children", None)


class BiblioNames(AttemptMixin, compiled.Names):
    def get_parent_delimiter(self, context=None):
        # CSL 1.0.2: the delimiter of cs:names separates its name variables
        own = self.get("delimiter")
        return own if own is not None else super().get_parent_delimiter(context)

    def process(self, item, names_context=None, context=None, **kwargs):
        if names_context is None and self.name is None:
            # cs:names in a cs:substitute (also inside cs:choose) inherit the
            # cs:name and cs:label of the cs:names being substituted
            outer = self.xpath_search("./ancestor::cs:substitute[1]/parent::cs:names[1]")
            if outer:
                names_context = outer[0]
        _implicit_name(names_context if names_context is not None else self)
        variables = self.get("variable", "").split()
        wanted = [v for v in variables if v not in state.suppressed]
        for v in wanted:
            if v in item.reference:
                state.used(v)
        if not wanted:
            raise model.VariableError
        if state.names_depth == 0 and state.first_names is None:
            state.rendered_names = []
        state.names_depth += 1
        try:
            if wanted != variables:
                # hide variables a cs:substitute already printed (citeproc-py only
                # suppresses repeated cs:text variables)
                self.set("variable", " ".join(wanted))
            text = super().process(item, names_context=names_context, context=context, **kwargs)
        finally:
            state.names_depth -= 1
            if wanted != variables:
                self.set("variable", " ".join(variables))
        if state.phase == "bib" and text and state.names_var is None:
            # the cs:names that printed the names (the innermost, in a cs:substitute)
            state.names_var = self.get("variable", "")
        if state.phase == "cite" and text and state.cite_names is None:
            state.cite_shown = tuple(state.rendered_names)
            state.cite_names = tuple(
                tuple(n.parts()) for v in wanted if v in item.reference for n in item.reference[v]
            )
        first = state.phase == "bib" and state.names_depth == 0 and state.first_names is None
        if first and text:
            # citeproc-js compares the names shown (after et-al), not the text: a label
            # or "et al." does not make two name lists differ. Names printed by a
            # cs:names of several variables ("editor translator", looked up as one key)
            # or with a role label ("Smith, S., editor") are neither replaced nor
            # remembered by citeproc-js (util_substitute.js)
            own = state.names_var or ""
            several = " " in own.strip() or own.replace("-", "_") not in item.reference
            if several or state.names_label:
                state.first_names = ()
                return text
            state.first_names = tuple(state.rendered_names) or (str(text),)
            if state.substitute is not None and state.substitute_positions is None:
                return String(state.substitute)
        return text


class BiblioLabel(AttemptMixin, TermFallbackMixin, CaseMixin, compiled.Label):
    def process(self, item, variable=None, plural=None, context=None, **kwargs):
        own = self.get("variable")
        # a label for an absent variable renders nothing (citeproc-js), so the
        # enclosing group is suppressed as well
        if variable is None and own and own != "locator":
            absent = own in state.suppressed or own.replace("-", "_") not in item.reference
            if absent:
                return None
        text = super().process(item, variable=variable, plural=plural, context=context, **kwargs)
        if text and state.names_depth and state.phase == "bib":
            state.names_label = True
        return text

    def calls_variable(self):
        return bool(self.get("variable"))

    def _is_plural(self, item):
        variable = self.get("variable")
        if variable not in NUMBER_VARS:
            return super()._is_plural(item)
        value = item.reference.get(variable.replace("-", "_"))
        return value is not None and is_plural(value, variable, item.reference.type)


class BiblioNamePart(CaseMixin, compiled.Name_Part):
    pass


class BiblioKey(compiled.Key):
    def sort_keys(self, items, context):
        # a sort key is rendered on its own: substitutions made while rendering it must
        # not suppress variables in the entry being rendered around it
        saved, state.suppressed = state.suppressed, set()
        try:
            return super().sort_keys(items, context)
        finally:
            state.suppressed = saved


_OVERRIDES = {
    "text": BiblioText,
    "number": BiblioNumber,
    "name": BiblioName,
    "names": BiblioNames,
    "date": BiblioDate,
    "date-part": BiblioDatePart,
    "label": BiblioLabel,
    "name-part": BiblioNamePart,
    "substitute": BiblioSubstitute,
    "group": BiblioGroup,
    "if": BiblioIf,
    "key": BiblioKey,
    "else-if": BiblioElseIf,
}


def _make_parser() -> etree.XMLParser:
    lookup = etree.ElementNamespaceClassLookup()
    namespace = lookup.get_namespace(CSL_NS)
    namespace[None] = compiled.DEFAULT
    namespace.update(compiled.ELEMENTS)
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


class BiblioStyleElement(compiled.Style):
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
        # keep every element proxy alive, so the caches of .compiled live with the style
        self._pinned = [el for tree in (self.root, *self.root.locales) for el in tree.iter()]
        style_id = self.root.findtext(f"{{{CSL_NS}}}info/{{{CSL_NS}}}id")
        self.root.uppercase_subtitles = wants_uppercase_subtitles(style_id)
        self.explicit_year_suffix = bool(
            self.root.xpath('//cs:text[@variable="year-suffix"]', namespaces={"cs": CSL_NS})
        )

    def term(self, name: str, default: str = "") -> str:
        text = self.root.get_single_term(name)
        return str(text) if text else default

    def punctuation_in_quote(self) -> bool:
        value = self.root.get_locale_option("punctuation-in-quote")
        return str(value).lower() == "true"
