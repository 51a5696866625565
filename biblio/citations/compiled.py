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

_MISSING = object()


def _slot(element: Any, name: str) -> dict:
    """A per-element cache dict kept in the proxy's ``__dict__``."""
    d = element.__dict__
    cache = d.get(name)
    if cache is None:
        cache = d[name] = {}
    return cache


class CachedLookups:
    """Memoised root, XPath searches and terms (see the module docstring)."""

    def get_root(self):
        d = self.__dict__
        root = d.get("_root")
        if root is None:
            root = d["_root"] = self.getroottree().getroot()
        return root

    def xpath_search(self, expression):
        cache = _slot(self, "_xpath")
        found = cache.get(expression)
        if found is None:
            found = cache[expression] = super().xpath_search(expression)  # type: ignore[misc]
        return found

    def get_macro(self, name):
        cache = _slot(self.get_root(), "_macros")
        macro = cache.get(name)
        if macro is None:
            macro = cache[name] = super().get_macro(name)  # type: ignore[misc]
        return macro

    def get_layout(self):
        d = self.__dict__
        layout = d.get("_layout")
        if layout is None:
            layout = d["_layout"] = super().get_layout()  # type: ignore[misc]
        return layout

    def get_term(self, name, form=None, *args, **kwargs):
        cache = _slot(self.get_root(), "_terms")
        key = (name, form, args, tuple(kwargs.items()))
        term = cache.get(key, _MISSING)
        if term is _MISSING:
            term = cache[key] = super().get_term(name, form, *args, **kwargs)  # type: ignore[misc]
        return term

    def get_locale_option(self, name):
        cache = _slot(self.get_root(), "_locale_options")
        value = cache.get(name, _MISSING)
        if value is _MISSING:
            value = cache[name] = super().get_locale_option(name)  # type: ignore[misc]
        return value


class CachedTerm(CachedLookups):
    """A term's singular and plural text, read once."""

    @property
    def single(self):
        d = self.__dict__
        if "_single" not in d:
            d["_single"] = model.Term.single.fget(self)  # type: ignore[attr-defined]
        return d["_single"]

    @property
    def multiple(self):
        d = self.__dict__
        if "_multiple" not in d:
            d["_multiple"] = model.Term.multiple.fget(self)  # type: ignore[attr-defined]
        return d["_multiple"]


class CachedName(CachedLookups):
    """cs:name options resolved once per (option, context) outside sort keys."""

    def get_option(self, name, context=None, sort_options=None):
        if sort_options:
            return super().get_option(name, context, sort_options)  # type: ignore[misc]
        cache = _slot(self, "_options")
        key = (name, context)
        value = cache.get(key, _MISSING)
        if value is _MISSING:
            value = cache[key] = super().get_option(name, context, None)  # type: ignore[misc]
        return value

    def et_al(self):
        d = self.__dict__
        if "_et_al" not in d:
            d["_et_al"] = super().et_al()  # type: ignore[misc]
        return d["_et_al"]


class CachedCondition(CachedLookups):
    """cs:if / cs:else-if with the ``type`` list split once."""

    def _type(self, item):
        d = self.__dict__
        types = d.get("_types")
        if types is None:
            types = d["_types"] = tuple(t.lower() for t in self.get("type").split())
        ref_type = item.reference.type
        return [t == ref_type for t in types]


def _cached(cls: type, mixin: type = CachedLookups) -> type:
    return type(cls.__name__, (mixin, cls), {"__module__": __name__})


Style = _cached(model.Style)
Locale = _cached(model.Locale)
Term = _cached(model.Term, CachedTerm)
Text = _cached(model.Text)
Number = _cached(model.Number)
Name = _cached(model.Name, CachedName)
Names = _cached(model.Names)
Label = _cached(model.Label)
Name_Part = _cached(model.Name_Part)
Key = _cached(model.Key)
Date = _cached(model.Date)
Date_Part = _cached(model.Date_Part)
Group = _cached(model.Group)
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
        + (Date, Date_Part, Group, If, Else_If, Substitute)
    }
)
DEFAULT = _cached(model.CitationStylesElement)


class BoundCitationItem(CitationItem):
    """A citation item that holds its reference instead of looking it up on each access.

    citeproc-py's ``CitationItem.reference`` goes item → citation → bibliography → source
    every time a variable is read; biblio registers each item once, so the reference is
    bound at creation.
    """

    reference: Any = None  # shadows the property; the instance attribute wins

    def __init__(self, key: str, reference: Any, **args: Any) -> None:
        super().__init__(key, **args)
        self.__dict__["reference"] = reference
