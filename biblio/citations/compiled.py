"""citeproc-py's CSL element classes with their lookups resolved once per parsed style.

citeproc-py walks the style tree on every call: each macro call is an XPath search from the
root, each name option an ``ancestor::`` search, each term an XPath query over the locale's
terms, each ``cs:if type=`` test a split of its attribute, and every item variable goes
through a chain of properties (``item.reference`` looks the item up in the bibliography's
source on each access). Profiles put more than a third of a cold render there.

The classes here subclass citeproc-py's and memoise those lookups on the element itself
(or on the root, for terms). This is sound because a parsed style is never changed while it
renders (biblio's own temporary attribute changes touch nothing these lookups read) and
because :class:`~.engine.BiblioStyle` pins every element proxy of the style and its locales
for its lifetime, so the Python attributes holding the caches live as long as the style.
lxml returns the same proxy for an element while one is referenced. The element classes of
:mod:`.engine` and :mod:`.groups` derive from these, so each override still runs first and
the caches sit directly above citeproc-py's code.
"""

from __future__ import annotations

from typing import Any

from citeproc import model
from citeproc.source import CitationItem
from citeproc.string import String, join

from .markup import strip_markers
from .names import ROMANESQUE

_MISSING = object()


def _slot(element: Any, name: str) -> dict:
    """A per-element cache dict kept in the proxy's ``__dict__``.

    Every cache key starts with ``_memo_`` so that none can shadow a method.
    """
    d = element.__dict__
    cache = d.get(name)
    if cache is None:
        cache = d[name] = {}
    return cache


class CachedLookups:
    """Memoised root, XPath searches and terms (see the module docstring)."""

    def get_root(self):
        d = self.__dict__
        root = d.get("_memo_root")
        if root is None:
            root = d["_memo_root"] = self.getroottree().getroot()
        return root

    def xpath_search(self, expression):
        cache = _slot(self, "_memo_xpath")
        found = cache.get(expression)
        if found is None:
            found = cache[expression] = super().xpath_search(expression)  # type: ignore[misc]
        return found

    def get_macro(self, name):
        cache = _slot(self.get_root(), "_memo_macros")
        macro = cache.get(name)
        if macro is None:
            macro = cache[name] = super().get_macro(name)  # type: ignore[misc]
        return macro

    def get_layout(self):
        d = self.__dict__
        layout = d.get("_memo_layout")
        if layout is None:
            layout = d["_memo_layout"] = super().get_layout()  # type: ignore[misc]
        return layout

    def get_term(self, name, form=None, *args, **kwargs):
        cache = _slot(self.get_root(), "_memo_terms")
        key = (name, form, args, tuple(kwargs.items()))
        term = cache.get(key, _MISSING)
        if term is _MISSING:
            term = cache[key] = super().get_term(name, form, *args, **kwargs)  # type: ignore[misc]
        return term

    def get_locale_option(self, name):
        cache = _slot(self.get_root(), "_memo_locale_options")
        value = cache.get(name, _MISSING)
        if value is _MISSING:
            value = cache[name] = super().get_locale_option(name)  # type: ignore[misc]
        return value

    def __getattr__(self, name):
        # citeproc-py reads child elements as attributes (``names.name``, ``bib.layout``);
        # the answer is kept as a plain attribute, so the next read does not search.
        # Elements citeproc-py inserts later (a default cs:name) are not in the CSL
        # namespace, so they never change these answers.
        found = super().__getattr__(name)  # type: ignore[misc]
        if not name.startswith("_"):
            self.__dict__[name] = found
        return found

    #: citeproc-py rewrites the attributes of a locale's cs:date-part while rendering
    mutable_attributes = False

    def attr(self, name: str, default: Any = None) -> Any:
        """``self.get(name, default)`` read once: only for attributes nothing changes
        while rendering (not a cs:date-part's, which citeproc-py overwrites, nor the
        ``variable`` list biblio narrows on cs:names)."""
        cache = _slot(self, "_memo_attrs")
        key = (name, default)
        if key not in cache:
            cache[key] = self.get(name, default)
        return cache[key]

    def children(self) -> list:
        d = self.__dict__
        kids = d.get("_memo_children")
        if kids is None:
            kids = d["_memo_children"] = list(self.iterchildren())
        return kids

    def getchildren(self):
        return self.children()

    def render_children(self, item, delimiter="", **kwargs):
        # model.Parent.render_children over the cached children
        output = []
        for child in self.children():
            try:
                if isinstance(child, model.Choose):
                    text = child.render(item, delimiter=delimiter, **kwargs)
                else:
                    text = child.render(item, **kwargs)
                if text is not None:
                    output.append(text)
            except model.VariableError:
                pass
        if output:
            return join(output, delimiter)
        return None


_FORMATS = {
    ("font-style", "italic"): "Italic",
    ("font-style", "oblique"): "Oblique",
    ("font-variant", "small-caps"): "SmallCaps",
    ("font-weight", "bold"): "Bold",
    ("font-weight", "light"): "Light",
    ("text-decoration", "underline"): "Underline",
    ("vertical-align", "sup"): "Superscript",
    ("vertical-align", "sub"): "Subscript",
}
_PLAIN = {
    "font-style": "normal",
    "font-variant": "normal",
    "font-weight": "normal",
    "text-decoration": "none",
    "vertical-align": "baseline",
}


class CachedFormatting(CachedLookups):
    """Formatting and affixes read from the element's attributes once (model.Formatted,
    model.Affixed): an element without them passes text through untouched."""

    def _formats(self) -> tuple[str, ...] | None:
        d = self.__dict__
        if "_memo_format_names" not in d:
            names: list[str] | None = []
            for attr, plain in _PLAIN.items():  # citeproc-py's order of application
                value = self.get(attr, plain)
                if value != plain:
                    name = _FORMATS.get((attr, value))
                    if name is None:  # let citeproc-py deal with odd values
                        names = None
                        break
                    names.append(name)  # type: ignore[union-attr]
            d["_memo_format_names"] = None if names is None else tuple(names)
        return d["_memo_format_names"]

    #: elements whose output is one string (a citeproc-js text "blob")
    leaf = False

    def format(self, string):
        names = None if self.mutable_attributes else self._formats()
        if names is None:
            return super().format(string)  # type: ignore[misc]
        if isinstance(string, int | float):
            string = str(string)
        if names:
            if self.leaf and not ROMANESQUE.search(strip_markers(str(string))):
                # citeproc-js sets no italics on text without Latin, Greek, Cyrillic...
                # letters or digits (Chinese, Japanese, Korean titles)
                names = tuple(n for n in names if n not in ("Italic", "Oblique"))
            formatter = self.get_formatter()
            for name in names:
                string = getattr(formatter, name)(string)
        return string

    def strip_periods(self, string):
        value = (
            self.get("strip-periods", "false")
            if self.mutable_attributes
            else (self.attr("strip-periods", "false"))
        )
        return string.replace(".", "") if value.lower() == "true" else string

    def join(self, strings, default_delimiter=""):
        # model.Delimited.join with the delimiter read once
        delimiter = self.attr("delimiter", default_delimiter)
        try:
            return join((s for s in strings if s is not None), delimiter)
        except Exception:  # what citeproc-py does with strings it cannot join
            return String("")

    def wrap(self, string):
        if self.mutable_attributes:
            return super().wrap(string)  # type: ignore[misc]
        d = self.__dict__
        affixes = d.get("_memo_affixes")
        if affixes is None:
            affixes = d["_memo_affixes"] = (self.get("prefix", ""), self.get("suffix", ""))
        if string is not None and not affixes[0] and not affixes[1]:
            return string  # what model.Affixed.wrap gives with empty affixes
        return super().wrap(string)  # type: ignore[misc]


class CachedTerm(CachedLookups):
    """A term's singular and plural text, read once."""

    @property
    def single(self):
        d = self.__dict__
        if "_memo_single" not in d:
            d["_memo_single"] = model.Term.single.fget(self)  # type: ignore[attr-defined]
        return d["_memo_single"]

    @property
    def multiple(self):
        d = self.__dict__
        if "_memo_multiple" not in d:
            d["_memo_multiple"] = model.Term.multiple.fget(self)  # type: ignore[attr-defined]
        return d["_memo_multiple"]


class CachedName(CachedLookups):
    """cs:name options resolved once per (option, context) outside sort keys."""

    def get_option(self, name, context=None, sort_options=None):
        if sort_options:
            return super().get_option(name, context, sort_options)  # type: ignore[misc]
        cache = _slot(self, "_memo_options")
        key = (name, context)
        value = cache.get(key, _MISSING)
        if value is _MISSING:
            value = cache[key] = super().get_option(name, context, None)  # type: ignore[misc]
        return value

    def et_al(self):
        d = self.__dict__
        if "_memo_et_al" not in d:
            d["_memo_et_al"] = super().et_al()  # type: ignore[misc]
        return d["_memo_et_al"]


class CachedText(CachedLookups):
    """cs:text deciding once whether it prints a variable, a macro, a term or a value."""

    def process(self, item, context=None, **kwargs):
        # model.Text.process with the attribute checks done once
        if context is None:
            context = self
        d = self.__dict__
        kind = d.get("_memo_kind")
        if kind is None:
            attrib = self.attrib
            kind = next((k for k in ("variable", "macro", "term", "value") if k in attrib), "")
            d["_memo_kind"] = kind
        if not kind:
            return super().process(item, context=context, **kwargs)  # type: ignore[misc]
        language = item.reference.get("language")
        if language is None:
            language = self.get_root().attr("default-locale", "en")
        language = language[:2]
        if kind == "variable":
            text = self._variable(item, context)
        elif kind == "macro":
            text = self.get_macro(self.attr("macro")).render(item, context)
        elif kind == "term":
            text = self._term(item)
        else:
            text = String(self.preformat(self.attr("value")))
        return text, language


_TESTS = (
    ("type", "_type"),
    ("variable", "_variable"),
    ("is-numeric", "_is_numeric"),
    ("is-uncertain-date", "_is_uncertain_date"),
    ("locator", "_locator"),
)


class CachedCondition(CachedLookups):
    """cs:if / cs:else-if with its tests and the ``type`` list read once, the ``type``
    test done as citeproc-js does it."""

    def render(self, item, context=None, delimiter="", **kwargs):
        if not self.matches(item, context):
            raise model.ConditionFailed
        return self.render_children(item, context=context, delimiter=delimiter, **kwargs)

    def matches(self, item, context=None) -> bool:
        """model.If.render's test, without rendering, with its attributes read once."""
        d = self.__dict__
        tests = d.get("_memo_tests")
        if tests is None:
            attrib = self.attrib
            tests = d["_memo_tests"] = tuple(m for a, m in _TESTS if a in attrib)
            d["_memo_has_position"] = "position" in attrib
            d["_memo_match"] = self.get("match")
            # a type test alone (most branches of the big styles): one set lookup
            only_type = tests == ("_type",) and not d["_memo_has_position"]
            d["_memo_only_types"] = self._types() if only_type else None
        only_types = d["_memo_only_types"]
        if only_types is not None:
            return (item.reference.type in only_types) != (d["_memo_match"] == "none")
        results: list = []
        for method in tests:
            results += getattr(self, method)(item)
        if d["_memo_has_position"]:
            results += self._position(item, context)
        match = d["_memo_match"]
        if match == "any":
            return any(results)
        if match == "none":
            return not any(results)
        return all(results)

    def _variable(self, item):
        d = self.__dict__
        names = d.get("_memo_variables")
        if names is None:
            names = d["_memo_variables"] = tuple(
                v.replace("-", "_") for v in self.get("variable").split()
            )
        reference = item.reference
        return [("locator" in item) if v == "locator" else (v in reference) for v in names]

    def _types(self) -> frozenset[str]:
        d = self.__dict__
        types = d.get("_memo_types")
        if types is None:
            types = d["_memo_types"] = frozenset(t.lower() for t in self.get("type").split())
        return types

    def _type(self, item):
        # one test, true for any of the types, whatever ``match`` says (citeproc-js
        # composes type="a b" as an "any" match: with match="all" citeproc-py asked
        # for an item of every type at once)
        return [item.reference.type in self._types()]


class CachedChoose(CachedLookups):
    """cs:choose asking each branch whether it matches, instead of rendering branches
    that raise ConditionFailed until one does not (an exception per failed branch)."""

    def render(self, item, context=None, delimiter="", **kwargs):
        for branch in self.children():
            matches = getattr(branch, "matches", None)
            if matches is None:  # cs:else (or a stray element): model.Choose's way
                try:
                    return branch.render(item, context=context, delimiter=delimiter, **kwargs)
                except model.ConditionFailed:
                    continue
            if matches(item, context):
                return branch.render_children(item, context=context, delimiter=delimiter, **kwargs)
        return None


_LEAVES = (model.Text, model.Number, model.Label, model.Date_Part, model.Name_Part, model.Et_Al)


def _cached(cls: type, mixin: type = CachedLookups) -> type:
    bases: tuple[type, ...] = (mixin,)
    if issubclass(cls, model.Formatted | model.Affixed) and not issubclass(mixin, CachedFormatting):
        bases = (mixin, CachedFormatting) if mixin is not CachedLookups else (CachedFormatting,)
    namespace = {
        "__module__": __name__,
        "leaf": issubclass(cls, _LEAVES),
        "mutable_attributes": cls is model.Date_Part,
    }
    return type(cls.__name__, (*bases, cls), namespace)


Style = _cached(model.Style)
Locale = _cached(model.Locale)
Term = _cached(model.Term, CachedTerm)
Text = _cached(model.Text, CachedText)
Number = _cached(model.Number)
Name = _cached(model.Name, CachedName)
Names = _cached(model.Names)
Label = _cached(model.Label)
Name_Part = _cached(model.Name_Part)
Key = _cached(model.Key)
Date = _cached(model.Date)
Date_Part = _cached(model.Date_Part)
Group = _cached(model.Group)
Choose = _cached(model.Choose, CachedChoose)
If = _cached(model.If, CachedCondition)
Else_If = _cached(model.Else_If, CachedCondition)
Substitute = _cached(model.Substitute)

#: every CSL element class, by tag, with cached lookups (the overrides of :mod:`.engine`
#: replace some of these)
ELEMENTS: dict[str, type] = {
    cls.__name__.replace("_", "-").lower(): _cached(cls)
    for cls in model.CitationStylesElement.__subclasses__()
}
ELEMENTS.update(
    {
        cls.__name__.replace("_", "-").lower(): cls
        for cls in (Style, Locale, Term, Text, Number, Name, Names, Label, Name_Part, Key)
        + (Date, Date_Part, Group, Choose, If, Else_If, Substitute)
    }
)
DEFAULT = _cached(model.CitationStylesElement)


class BoundCitationItem(CitationItem):
    """A citation item that holds its reference and number instead of looking them up.

    citeproc-py's ``CitationItem.reference`` goes item → citation → bibliography → source
    every time a variable is read, and ``number`` searches the list of every key; biblio
    binds the reference at creation and sets the number once the order is known.
    """

    # these shadow citeproc-py's properties; the instance attributes win
    reference: Any = None
    number: int | None = None  # position in the bibliography, set by the pipeline

    def __init__(self, key: str, reference: Any, **args: Any) -> None:
        super().__init__(key, **args)
        self.__dict__["reference"] = reference
