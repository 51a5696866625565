"""The search language researchers type, parsed into a tree before any database sees it.

Kerko's and most catalogues' syntax: words are ANDed; ``OR`` and ``NOT`` (also ``-word``)
and explicit ``AND`` in capitals; parentheses group; ``"faculty status"`` is a phrase,
``librar*`` a prefix; ``title:``, ``creator:`` (or ``author:``), ``tag:``,
``abstract:``, ``publication:``, ``note:`` and ``fulltext:`` scope a word, phrase or
group to one field. :func:`parse` turns the text into a small tree of :class:`Term`,
:class:`Scope`, :class:`AllOf`, :class:`AnyOf` and :class:`Without` nodes, or raises
:class:`SearchSyntaxError` with a message a visitor can act on (a quote or a parenthesis
left open, a ``*`` on its own, an ``OR`` with nothing beside it, too long a search).
Compilers walk the tree: :func:`fts5` writes an FTS5 MATCH expression in which every
word is a quoted string (nothing the visitor typed is FTS5 syntax), and
:mod:`biblio.catalog.search` writes SQL for databases without FTS5. Anything not
recognised as syntax is a word, so ``o'brien``, ``NEAR(x)`` or ``foo:bar`` simply search
for their words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

#: Longest search accepted (characters), most words, deepest nesting of parentheses.
MAX_LENGTH = 500
MAX_TERMS = 32
MAX_DEPTH = 8
#: Field scopes a visitor may type, and the index columns each covers.
FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "creator": ("creators",),
    "author": ("creators",),
    "tag": ("tags",),
    "abstract": ("abstract",),
    "publication": ("publication",),
    "note": ("notes",),
    "fulltext": ("fulltext",),
}
_WORD = re.compile(r"\w+")
_BREAK = frozenset('()"')
_FIELD = re.compile(r"([A-Za-z]+):(.*)", re.S)


class SearchSyntaxError(ValueError):
    """The search cannot be run as typed; the message says why and how to fix it."""


# -- the tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One word, or adjacent words (a phrase); ``prefix`` makes the last one a prefix."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class Scope:
    field: str  # a key of FIELDS
    node: Node


@dataclass(frozen=True)
class AllOf:
    """Every part matches; ``without`` lists parts that must not (NOT, ``-word``)."""

    parts: tuple[Node, ...]
    without: tuple[Node, ...] = ()


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Without:
    """A NOT'ed part; only meaningful inside :class:`AllOf`, which the parser ensures."""

    node: Node


Node = Term | Scope | AllOf | AnyOf | Without


# -- tokens --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # word | phrase | field | ( | ) | AND | OR | NOT
    text: str = ""
    prefix: bool = False


def _tokens(q: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(q)
    while i < n:
        ch = q[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append(_Token(ch))
            i += 1
        elif ch == '"':
            end = q.find('"', i + 1)
            if end < 0:
                raise SearchSyntaxError(
                    'A quotation mark is never closed: add the closing " after the phrase, '
                    "or remove the quotation mark."
                )
            prefix = end + 1 < n and q[end + 1] == "*"
            out.append(_Token("phrase", q[i + 1 : end], prefix))
            i = end + 2 if prefix else end + 1
        elif ch == "-" and i + 1 < n and q[i + 1] in _BREAK:
            out.append(_Token("NOT"))  # -"a phrase" or -(a group); -word is in _bare
            i += 1
        else:
            start = i
            while i < n and not q[i].isspace() and q[i] not in _BREAK:
                i += 1
            out.extend(_bare(q[start:i]))
    return out


def _bare(text: str) -> list[_Token]:
    """A run of characters without spaces, quotes or parentheses."""
    if text in ("AND", "OR", "NOT"):
        return [_Token(text)]
    if len(text) > 1 and text[0] == "-" and text[1] != "-":
        return [_Token("NOT"), *_bare(text[1:])]
    scoped = _FIELD.fullmatch(text)
    if scoped and scoped.group(1).lower() in FIELDS:
        rest = scoped.group(2)
        return [_Token("field", scoped.group(1).lower()), *(_bare(rest) if rest else [])]
    if text.strip("*") == "" and text:
        raise SearchSyntaxError(
            "A * on its own searches for nothing: put it at the end of a word to find "
            "every word that begins so, as in librar*."
        )
    return [_Token("word", text, text.endswith("*"))]


# -- parsing -------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens, self.at, self.depth = tokens, 0, 0

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def query(self) -> Node | None:
        node = self.any()
        token = self.peek()
        if token is not None:  # only a ")" can stop the top level early
            raise SearchSyntaxError(
                "A closing parenthesis has no opening one: remove the ) or add a ( before it."
            )
        return node

    def any(self) -> Node | None:
        parts = [self.all()]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.take()
            parts.append(self.all())
        if len(parts) > 1:
            if any(p is None for p in parts):
                raise SearchSyntaxError(
                    "OR needs something to search for on both sides, as in tenure OR promotion."
                )
            if any(isinstance(p, Without) for p in parts):
                raise _lonely_not()
            return AnyOf(tuple(p for p in parts if p is not None))
        return parts[0]

    def all(self) -> Node | None:
        parts: list[Node] = []
        while (token := self.peek()) is not None and token.kind not in ("OR", ")"):
            if token.kind == "AND":
                self.take()
                if not parts or (nxt := self.peek()) is None or nxt.kind in ("OR", ")", "AND"):
                    raise SearchSyntaxError(
                        "AND needs something to search for on both sides, "
                        "as in librarians AND unions."
                    )
                continue
            node = self.unary()
            if node is not None:
                parts.append(node)
        keep = tuple(p for p in parts if not isinstance(p, Without))
        drop = tuple(p.node for p in parts if isinstance(p, Without))
        if not parts:
            return None
        if not keep:
            return Without(drop[0]) if len(drop) == 1 else Without(AnyOf(drop))
        if len(keep) == 1 and not drop:
            return keep[0]
        return AllOf(keep, drop)

    def unary(self) -> Node | None:
        token = self.take()
        if token.kind == "NOT":
            nxt = self.peek()
            if nxt is None or nxt.kind in ("OR", "AND", "NOT", ")"):
                raise SearchSyntaxError(
                    "NOT needs a word after it, as in librarians NOT public (or -public)."
                )
            node = self.unary()
            return None if node is None else Without(node)
        if token.kind == "field":
            nxt = self.peek()
            if nxt is None or nxt.kind in ("OR", "AND", "NOT", ")", "field"):
                raise SearchSyntaxError(
                    f"{token.text}: needs a word, phrase or group after it, as in "
                    f'{token.text}:tenure or {token.text}:"faculty status".'
                )
            node = self.unary()
            if node is None:
                return None
            if isinstance(node, Without):
                raise _lonely_not()
            return Scope(token.text, node)
        if token.kind == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise SearchSyntaxError(
                    f"The search nests parentheses too deeply (at most {MAX_DEPTH} levels)."
                )
            node = self.any()
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise SearchSyntaxError(
                    "An opening parenthesis is never closed: add a ) after the group, "
                    "or remove the (."
                )
            self.take()
            self.depth -= 1
            if node is None:
                raise SearchSyntaxError(
                    "A pair of parentheses has nothing to search for inside: remove it."
                )
            return node
        if token.kind == ")":
            raise SearchSyntaxError(
                "A closing parenthesis has no opening one: remove the ) or add a ( before it."
            )
        words = tuple(_WORD.findall(token.text))
        if not words:
            return None  # punctuation alone ("&", "—"): nothing to search for
        return Term(words, token.prefix)


def _lonely_not() -> SearchSyntaxError:
    return SearchSyntaxError(
        "NOT (or -) excludes from something else: give a word to keep beside it, "
        "as in librarians NOT public."
    )


def _count(node: Node) -> int:
    if isinstance(node, Term):
        return len(node.words)
    if isinstance(node, Scope | Without):
        return _count(node.node)
    if isinstance(node, AllOf):
        return sum(map(_count, node.parts + node.without))
    return sum(map(_count, node.parts))


def parse(q: str) -> Node:
    """The tree of search text ``q``; :class:`SearchSyntaxError` says what to change."""
    if len(q) > MAX_LENGTH:
        raise SearchSyntaxError(
            f"The search is {len(q)} characters long; at most {MAX_LENGTH} can be searched. "
            "Shorten it to its most telling words."
        )
    node = _Parser(_tokens(q)).query()
    if node is None:
        raise SearchSyntaxError(
            "The search has no words to search for: type a word, a phrase in quotation "
            "marks or a prefix such as librar*."
        )
    if isinstance(node, Without):
        raise _lonely_not()
    if _count(node) > MAX_TERMS:
        raise SearchSyntaxError(
            f"The search has more than {MAX_TERMS} words: keep the most telling ones."
        )
    return node


# -- FTS5 ----------------------------------------------------------------------------


def fts5(node: Node) -> str:
    """An FTS5 MATCH expression for ``node``: words quoted, syntax from the tree only."""
    if isinstance(node, Term):
        # \w+ words hold no quotation mark, so a quoted string is always data to FTS5.
        return '"' + " ".join(node.words) + '"' + ("*" if node.prefix else "")
    if isinstance(node, Scope):
        columns = " ".join(FIELDS[node.field])
        return "{" + columns + "} : (" + fts5(node.node) + ")"
    if isinstance(node, AnyOf):
        return "(" + " OR ".join(fts5(p) for p in node.parts) + ")"
    if isinstance(node, AllOf):
        kept = "(" + " AND ".join(fts5(p) for p in node.parts) + ")"
        for part in node.without:
            kept = "(" + kept + " NOT " + fts5(part) + ")"
        return kept
    raise _lonely_not()


def _joined(node: AllOf) -> Term | None:
    """Words typed side by side (``faculty status``) as the phrase they make."""
    terms = [p for p in node.parts if isinstance(p, Term)]
    if len(terms) == len(node.parts) > 1 and not any(t.prefix for t in terms[:-1]):
        return Term(tuple(w for t in terms for w in t.words), terms[-1].prefix)
    return None


def _wanted(node: Node, field: str | None) -> Iterator[tuple[str | None, Term]]:
    if isinstance(node, Term):
        yield field, node
    elif isinstance(node, Scope):
        yield from _wanted(node.node, node.field)
    elif isinstance(node, AnyOf | AllOf):
        for part in node.parts:
            yield from _wanted(part, field)
        joined = _joined(node) if isinstance(node, AllOf) else None
        if joined is not None:
            yield field, joined


def fts5_ranking(node: Node, columns: Iterable[str]) -> str | None:
    """An FTS5 expression matching any wanted word of ``node`` (not the NOT'ed ones)
    within ``columns``, plus the phrase of words typed side by side: what a ranking
    table scores with bm25, which counts every phrase of the expression, so works
    holding more of the words, or the words together, rank higher. None when no word
    of the search is looked for in those columns."""
    allowed = set(columns)
    parts = [
        fts5(term if field is None else Scope(field, term))
        for field, term in _wanted(node, None)
        if field is None or set(FIELDS[field]) <= allowed
    ]
    return " OR ".join(parts) or None


def fts_query(q: str) -> str:
    """The FTS5 MATCH expression of search text ``q`` (:class:`SearchSyntaxError` if bad)."""
    return fts5(parse(q))
