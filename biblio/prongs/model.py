"""The learned vocabulary: a linear text model per prong that backs up the rules.

Rules name the field's own phrases; they are precise but miss a route around the degree
worded in a way nobody wrote down. The model is trained on labelled works (title,
abstract, publication and tags) and weighs every word and word pair it saw: TF-IDF over
word 1-2 grams (sublinear term frequency, L2-normalised) and one logistic regression
per prong. It ships as a JSON file of plain numbers, so scoring needs nothing beyond
the standard library; training (``biblio prongs train``) needs scikit-learn, an
optional extra.

Its reasons are its heaviest positive terms in the item ("“without mls” +0.41"), so an
assignment it makes is explained like one the rules make, and owners' overrides beat
it the same way.
"""

from __future__ import annotations

import heapq
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from biblio.prongs.fields import PUBLICATION_FIELDS, is_prefix_tag, normalise

FORMAT = "biblio-prong-model"
VERSION = 1
BUILTIN = Path(__file__).resolve().parent.parent / "data" / "prong_model.json"
_WORD = re.compile(r"[^\W_]{2,}")
#: Function words left out before terms are formed (as a stop list does): they carry
#: no topic and would only clutter the reasons. Negations ("not", "no", "non",
#: "without") stay: "without an MLS" is the very signal of a route around the degree.
STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "either",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "however",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "may",
        "me",
        "might",
        "more",
        "most",
        "must",
        "my",
        "myself",
        "nor",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "per",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "thus",
        "to",
        "too",
        "under",
        "until",
        "up",
        "upon",
        "us",
        "very",
        "via",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "whether",
        "which",
        "while",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "within",
        "would",
        "yet",
        "you",
        "your",
        "yours",
        "yourself",
    ]
)


class ModelError(ValueError):
    """A model file that cannot be used, with the reason."""


def _fold(text: str) -> str:
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def model_text(data: Mapping[str, Any], tag_prefix: str = "prong:") -> list[str]:
    """The parts of an item the model reads: title, abstract, publication, tags."""
    parts = [data.get("title"), data.get("shortTitle"), data.get("abstractNote")]
    parts += [data.get(f) for f in PUBLICATION_FIELDS]
    for tag in data.get("tags") or []:
        name = tag.get("tag") if isinstance(tag, Mapping) else None
        if isinstance(name, str) and not is_prefix_tag(name, tag_prefix):
            parts.append(name)
    return [p for p in parts if isinstance(p, str) and p.strip()]


def terms(parts: Iterable[str]) -> list[str]:
    """Word unigrams and bigrams of each part, stop words left out (a bigram never spans
    two parts)."""
    out: list[str] = []
    for part in parts:
        words = [w for w in _WORD.findall(_fold(normalise(part))) if w not in STOP_WORDS]
        out += words
        out += [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    return out


@dataclass(frozen=True)
class ProngModel:
    prong: str
    intercept: float
    threshold: float  # probability at or above which the model assigns the prong
    weights: Mapping[str, float]


@dataclass(frozen=True)
class TextModel:
    """Vocabulary, IDF and one linear model per prong, read from a model file."""

    idf: Mapping[str, float]
    prongs: tuple[ProngModel, ...]
    meta: Mapping[str, Any]

    def prong(self, prong_id: str) -> ProngModel | None:
        for pm in self.prongs:
            if pm.prong == prong_id:
                return pm
        return None

    def vector(self, parts: Iterable[str]) -> dict[str, float]:
        """The item's TF-IDF vector (sublinear tf, L2-normalised) over the vocabulary."""
        counts = Counter(t for t in terms(parts) if t in self.idf)
        vec = {t: (1.0 + math.log(n)) * self.idf[t] for t, n in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values()))
        return {t: v / norm for t, v in vec.items()} if norm else {}

    def score(
        self, vec: Mapping[str, float], prong: ProngModel, top: int = 6
    ) -> tuple[float, list[tuple[str, float]]]:
        """(probability, the ``top`` terms that raise it most, heaviest first) of one prong."""
        weights = prong.weights
        parts = [(t, v * weights[t]) for t, v in vec.items() if t in weights]
        z = prong.intercept + math.fsum(c for _t, c in parts)
        p = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
        best = heapq.nlargest(top, (tc for tc in parts if tc[1] > 0), key=lambda tc: (tc[1], tc[0]))
        return p, best


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def parse_model(raw: Any, where: str = "model") -> TextModel:
    """Check and build a model from its JSON object; ModelError names what is wrong."""
    if not isinstance(raw, Mapping) or raw.get("format") != FORMAT:
        raise ModelError(f"{where}: not a {FORMAT} file")
    if raw.get("version") != VERSION:
        raise ModelError(f"{where}: unsupported version {raw.get('version')!r}")
    idf_raw = raw.get("idf")
    if not isinstance(idf_raw, Mapping) or not idf_raw:
        raise ModelError(f"{where}: 'idf' must be a non-empty object")
    idf = {str(t): _number(v, f"{where}: idf[{t!r}]") for t, v in idf_raw.items()}
    prongs_raw = raw.get("prongs")
    if not isinstance(prongs_raw, Mapping) or not prongs_raw:
        raise ModelError(f"{where}: 'prongs' must be a non-empty object")
    prongs = []
    for pid, body in prongs_raw.items():
        here = f"{where}: prongs.{pid}"
        if not isinstance(body, Mapping) or not isinstance(body.get("weights"), Mapping):
            raise ModelError(f"{here}: needs 'intercept', 'threshold' and 'weights'")
        threshold = _number(body.get("threshold"), f"{here}.threshold")
        if not 0 < threshold < 1:
            raise ModelError(f"{here}.threshold: must be a probability between 0 and 1")
        weights = {}
        for term, w in body["weights"].items():
            if term not in idf:
                raise ModelError(f"{here}.weights: {term!r} is not in the vocabulary")
            weights[term] = _number(w, f"{here}.weights[{term!r}]")
        prongs.append(
            ProngModel(
                str(pid), _number(body.get("intercept"), f"{here}.intercept"), threshold, weights
            )
        )
    meta: Mapping[str, Any] = raw["meta"] if isinstance(raw.get("meta"), Mapping) else {}
    return TextModel(idf=idf, prongs=tuple(prongs), meta=meta)


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int) -> TextModel:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read the model ({exc})") from exc
    return parse_model(raw, path)


def dump_model(obj: Mapping[str, Any], path: str | Path) -> None:
    """Write a model object (from :func:`train`) as compact, key-sorted JSON."""
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    Path(path).write_text(text + "\n", encoding="utf-8")


def load_model(path: str | Path) -> TextModel:
    """The model in ``path`` (cached until the file changes)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise ModelError(f"{p}: cannot read the model ({exc.strerror})") from exc
    return _load_cached(str(p.resolve()), st.st_mtime_ns, st.st_size)


def train(
    docs: Sequence[Sequence[str]],
    labels: Sequence[Iterable[str]],
    prong_ids: Sequence[str],
    *,
    c: float = 10.0,
    threshold: float = 0.5,
    min_df: int = 2,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit the model on ``docs`` (each a list of text parts) and return its JSON object.

    Needs scikit-learn (``pip install 'biblio[learn]'``).
    """
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise ModelError("training needs scikit-learn: pip install 'biblio[learn]'") from exc
    sets = [set(g) for g in labels]
    vec = TfidfVectorizer(analyzer=terms, sublinear_tf=True, min_df=min_df)
    x = vec.fit_transform(list(docs))
    vocab = vec.get_feature_names_out()
    out: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "meta": {"documents": len(docs), "C": c, "min_df": min_df, **(meta or {})},
        "idf": {t: round(float(v), 5) for t, v in zip(vocab, vec.idf_, strict=True)},
        "prongs": {},
    }
    for pid in prong_ids:
        y = [int(pid in g) for g in sets]
        if len(set(y)) < 2:
            raise ModelError(
                f"cannot train {pid!r}: the labels need both positive and negative works"
            )
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, y)
        coef = clf.coef_[0]
        out["prongs"][pid] = {
            "intercept": round(float(clf.intercept_[0]), 6),
            "threshold": threshold,
            "positives": sum(y),
            "weights": {
                t: round(float(w), 5) for t, w in zip(vocab, coef, strict=True) if abs(w) >= 1e-5
            },
        }
    return out
