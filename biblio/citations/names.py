"""Personal names the way citeproc-js writes them: initials and non-Latin name order.

citeproc-py initialises a given name by splitting it on hyphens and taking the first
letter of each capitalised part, so "Jung-ran" came out "J.-. ran ." and "K-Lee" as
"K.-L.". citeproc-js (``CSL.Util.Names.initializeWith``) treats a hyphen followed by a
lower-case letter as part of the name ("Jung-ran" is "J."), keeps the hyphen between
capitalised parts ("K-Lee" is "K.-L."), keeps a run of capitals ("ThZ" stays "Th."),
and leaves names in scripts without initials alone. :func:`initialize` is a port of it.

citeproc-js also classes each name by script (``_isRomanesque``): a name whose family
name has no Latin, Greek, Cyrillic, Hebrew, Arabic or Thai letter (Chinese, Japanese,
Korean) prints family and given name together without a space ("王小明") in every long
form, and a Latin name on a Chinese or Japanese item prints family first ("Yamada Taro").
:func:`script_class` gives that class.
"""

from __future__ import annotations

import re
from functools import lru_cache

_LETTERS = (
    "a-zA-Z\u0e01-\u0e5b\u00c0-\u017f\u0370-\u03ff\u0400-\u052f\u0590-\u05d4\u05d6-\u05ff"
    "\u1f00-\u1fff\u0600-\u06ff\u200c\u200d\u200e\u0218\u0219\u021a\u021b\u202a-\u202e"
)
# citeproc-js CSL.ROMANESQUE_REGEXP, STARTSWITH_ROMANESQUE_REGEXP, NAME_INITIAL_REGEXP
ROMANESQUE = re.compile(f"[-0-9{_LETTERS}]")
STARTS_ROMANESQUE = re.compile(f"^[&{_LETTERS}]")
_INITIAL = re.compile(
    "^([A-Z\u0e01-\u0e5b\u00c0-\u017f\u0400-\u042f\u0590-\u05d4\u05d6-\u05ff\u0600-\u06ff"
    "\u0370\u0372\u0376\u0386\u0388-\u03ab\u03e2\u03e4\u03e6\u03e8\u03ea\u03ec\u03ee\u03f4"
    "\u03f7\u03fd-\u03ff])([a-zA-Z\u0e01-\u0e5b\u00c0-\u017f\u0400-\u052f\u0600-\u06ff"
    "\u0370-\u03ff\u1f00-\u1fff]*|)(\\.)*"
)
_SPLIT = re.compile(r"([-\s]+)")
_TRAILING = re.compile("[\t\n\v\f\r \ufeff\u00a0]+$")

#: script classes of :func:`script_class`
NON_LATIN, MIXED, LATIN = 0, 1, 2


@lru_cache(maxsize=1 << 14)  # the same given names come back entry after entry
def initialize(given: str, terminator: str, hyphen: bool = True, normalize: bool = False) -> str:
    """A given name reduced to initials, each followed by ``terminator`` (". ").

    With ``normalize`` (``initialize="false"``) names stay whole and only the initials
    already there get the terminator: "K-Lee" is "K.-Lee", "J R" is "J. R.".
    """
    name = given
    if not name:
        return ""
    terminator = terminator or ""
    if name in ("Lord", "Lady") or (not STARTS_ROMANESQUE.match(name) and "%s" not in terminator):
        return name
    if not hyphen:
        name = name.replace("-", " ")
    name = re.sub(r"\s*-\s*", "-", name)
    name = re.sub(r"\s+", " ", name)
    # a hyphen before a lower-case letter belongs to the name: "Jung-ran" is one name
    name = re.sub(r"-([a-z])", "\u2013\\1", name)
    for i in range(len(name) - 2, -1, -1):
        if name[i] == "." and name[i + 1] != " ":
            name = name[:i] + ". " + name[i + 1 :]
    parts = _SPLIT.split(name)  # names and the separators between them
    if len(parts) == 1:
        last = re.search(r"[^.]+$", parts[0])
        if last and len(last.group(0)) == 1 and last.group(0) != last.group(0).lower():
            parts[0] += "."
    text = _normalized(parts, terminator) if normalize else _initials(parts, terminator)
    return re.sub("\u2013([a-z])", r"-\1", text)


def _normalized(parts: list[str], terminator: str) -> str:
    """citeproc-js CSL.Util.Names.doNormalize on names and separators."""
    abbreviation = []
    for i, n in enumerate(parts):
        if len(n) > 1 and n.endswith("."):
            parts[i] = re.sub(r"^(.*)\.(.*)$", r"\1\2", n, flags=re.S)
            abbreviation.append(True)
        else:
            abbreviation.append(len(n) == 1 and n.upper() == n)
    for i in range(0, len(parts), 2):
        if not abbreviation[i]:
            continue
        if i < len(parts) - 2:
            if not abbreviation[i + 2]:
                parts[i + 1] += " "
            if len(parts[i + 2]) > 1:
                parts[i + 1] = terminator.rstrip("\ufeff") + parts[i + 1]
            else:
                parts[i + 1] = terminator
        if i == len(parts) - 1:
            parts[i] += terminator
    text = _TRAILING.sub("", "".join(parts))
    text = re.sub(r"\s*-\s*", "-", text)
    return re.sub("[\t\n\v\f\r ]+", " ", text)


def _initials(parts: list[str], terminator: str) -> str:
    """citeproc-js CSL.Util.Names.doInitialize on names and separators."""
    count = len(parts)
    for i in range(0, count, 2):
        n = parts[i]
        if not n:
            continue
        m = _INITIAL.match(n)
        groups: list | None = list(m.groups()) if m else None
        if groups is None and not STARTS_ROMANESQUE.match(n) and len(n) > 1 and "%s" in terminator:
            groups = [n[0], n[1:], None]
        if groups and groups[1] and groups[2]:
            groups = [groups[0] + groups[1], "", groups[2]]
        if groups and groups[0][:1] == groups[0][:1].upper():
            extra = ""
            if groups[1]:
                capitals = ""
                for ch in groups[1]:
                    if ch != ch.upper():
                        break
                    capitals += ch
                if len(capitals) < len(groups[1]):
                    extra = capitals.lower()
            parts[i] = groups[0] + extra
            if i < count - 1:
                if "%s" in terminator:
                    parts[i] = terminator.replace("%s", parts[i])
                elif "-" in parts[i + 1]:
                    parts[i + 1] = terminator + "-"
                else:
                    parts[i + 1] = terminator
            elif "%s" in terminator:
                parts[i] = terminator.replace("%s", parts[i])
            else:
                parts.append(terminator)
        elif ROMANESQUE.search(n) and (not groups or not groups[2]):
            parts[i] = " " + n
    text = _TRAILING.sub("", "".join(parts))
    text = re.sub(r"\s*-\s*", "-", text)
    return re.sub("[\t\n\v\f\r ]+", " ", text)


def script_class(family: str | None, given: str | None, language: str | None) -> int:
    """citeproc-js ``_isRomanesque``: NON_LATIN, MIXED (family-first order) or LATIN."""
    result = LATIN
    if not ROMANESQUE.search((family or "").replace('"', "")):
        result = NON_LATIN
        if given and STARTS_ROMANESQUE.match(given):
            result = MIXED
    elif language and language[:2] in ("ja", "zh"):
        result = MIXED
    return result


# -- particles ----------------------------------------------------------------------------

_FAMILY_PARTICLE = re.compile("^([^ ]+(?:-|\u02bb|\u2019| |') *)(.+)$", re.S)
_GIVEN_PARTICLE = re.compile("^([^ ]+(?:\u02bb |\u2019 | |' ) *)(.+)$", re.S)
_FIRST_CHAR = re.compile("^[-'\u02bb\u2019\\s]*(.).*$", re.S)


def _split_particles(value: str, given: bool) -> tuple[str, list[str]]:
    """citeproc-js splitParticles: leading lower-case words of a family name ("van der"),
    trailing ones of a given name ("Ludwig van")."""
    original = value
    found: list[str] = []
    rex = _GIVEN_PARTICLE if given else _FAMILY_PARTICLE
    if given:
        value = value[::-1]
    m = rex.match(value)
    while m:
        word = m.group(1)[::-1] if given else m.group(1)
        first = _FIRST_CHAR.sub(r"\1", word)
        if first.upper() == first:
            break
        if given:
            found.append(original[-len(word) :])
            original = original[: -len(word)]
        else:
            found.append(original[: len(word)])
            original = original[len(word) :]
        value = m.group(2)
        m = rex.match(value)
    if given:
        found.reverse()
        for i in range(1, len(found)):
            if found[i][:1] == " ":
                found[i - 1] += " "
        found = [f[1:] if f[:1] == " " else f for f in found]
        return original[: len(value)], found
    return original[-len(value) :], found


def _trim_last(text: str) -> str:
    last = text[-1:]
    text = text.strip()
    if last == " " and text[-1:] in ("'", "\u2019"):
        text += " "
    return text


def parse_particles(name: dict[str, str]) -> dict[str, str]:
    """Particles and suffix read out of a name's family and given parts, as citeproc-js
    does (``_parseName``) for names that have both and no explicit particle."""
    family, given = name.get("family"), name.get("given")
    if not family or not given or name.get("non-dropping-particle"):
        return name
    if family[:1] == '"' and family[-1:] == '"':  # quoted: taken as it is
        return {**name, "family": family[1:-1]}
    out = dict(name)
    out["family"], particles = _split_particles(family, given=False)
    if _trim_last("".join(particles)):
        out["non-dropping-particle"] = _trim_last("".join(particles))
    if not out.get("suffix"):
        m = re.search(r"(\s*,!*\s*)", given)
        if m:
            idx = given.index(m.group(1))
            possible = given[idx + len(m.group(1)) :]
            if possible.replace(".", "") == "et al" and not out.get("dropping-particle"):
                out["dropping-particle"] = possible
            else:
                out["suffix"] = possible
            given = given[:idx]
    out["given"], particles = _split_particles(given, given=True)
    dropping = "".join(particles).strip()
    if dropping:
        out["dropping-particle"] = dropping
    return out
