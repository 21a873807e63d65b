"""Phrase matching on word tokens: what lets one vocabulary term match the many ways
reports write it.

A term matches a report when their token sequences agree after three normalisations
that apply to both sides alike, so they generalise to spellings never seen before:

- folding (:func:`kmerl.extraction.text.fold`): case, accents, umlaut digraphs, ``#``;
- punctuation between words is ignored (``st-t``, ``st t``, ``qrs(t)``, ``qrs t``), and
  two single letters joined by a hyphen are one word (``a-v block`` = ``av block``);
- inflection endings are stripped (:func:`stem`): ``unvollständiger``/``unvollständigen``,
  ``inferior``/``inferiorer``/``inferiora``, ``abnorm``/``abnormal``/``abnormes``/``abnormt``;
- compounds match their parts written apart, and the other way round: ``links schenkelblock``
  = ``linksschenkelblock``, ``av-block`` = ``avblock``, ``st t`` = ``st-t``.

A word written with an abbreviation dot (``intraventr.``, ``unbest.``) matches any term
word it begins. Matches never cross a statement boundary (sentence end or a long run of
spaces), and at each position the longest term wins.

Hand-written rather than a Snowball stemmer: one function must serve German, English and
Swedish in the same report (one language's stemmer leaves the others' endings), and the
endings that matter in ECG statements fit in one line.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from kmerl.extraction.text import FoldedText, fold

V = TypeVar("V")

# Longest first; stripped repeatedly while the stem keeps at least _MIN_STEM letters.
_ENDINGS = ("ern", "en", "er", "es", "em", "et", "ar", "or", "na", "al", "e", "s", "a", "t", "n")
_MIN_STEM = 4
_MIN_ABBREVIATION = 4
_MISSING = object()
_WORD = re.compile(r"[a-z0-9]+")
# A dot ends a sentence before a space, except after one letter ("v.a. infarkt", "block i. ").
_SENTENCE_END = re.compile(r"(?<![^a-z0-9][a-z])(?<!^[a-z])\.(?=\s|$)|[;!?]")


def stem(word: str) -> str:
    """The word without inflection endings (German, English, Swedish); numbers as they are."""
    if word.isdigit():
        return word
    changed = True
    while changed:
        changed = False
        for ending in _ENDINGS:
            if word.endswith(ending) and len(word) - len(ending) >= _MIN_STEM:
                word = word[: -len(ending)]
                changed = True
                break
    return word


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a folded text: its folded form, its stem and its folded span."""

    word: str
    stem: str
    start: int
    end: int
    statement: int  # index of the sentence it is in
    abbreviated: bool = False  # written with an abbreviation dot ("intraventr.")
    after_gap: bool = False  # a wide run of spaces precedes it (see kmerl.extraction.text.STATEMENT_GAP)


def tokenize(folded: FoldedText) -> list[Token]:
    text = folded.folded
    boundaries = sorted(m.start() for m in _SENTENCE_END.finditer(text))
    tokens: list[Token] = []
    matches = list(_WORD.finditer(text))
    index = 0
    while index < len(matches):
        match = matches[index]
        start, end, word = match.start(), match.end(), match.group(0)
        following = matches[index + 1] if index + 1 < len(matches) else None
        if len(word) == 1 and following and len(following.group(0)) == 1 and text[end : following.start()] == "-":
            word, end, index = word + following.group(0), following.end(), index + 1  # "a-v" -> "av"
        statement = bisect.bisect_right(boundaries, start)
        dotted = text[end : end + 1] == "." and len(word) >= _MIN_ABBREVIATION and not word.isdigit()
        gap = any(position in folded.breaks for position in range(tokens[-1].end if tokens else 0, start + 1))
        tokens.append(Token(word, stem(word), start, end, statement, dotted, gap))
        index += 1
    return tokens


def term_keys(term: str) -> tuple[str, str]:
    """Two terms sharing either key cannot be told apart by the matcher."""
    words = [token.word for token in tokenize(fold(term))]
    return " ".join(stem(word) for word in words), compound_key(words)


@dataclass(frozen=True, slots=True)
class Match(Generic[V]):
    first: int  # token index of the first word
    last: int  # token index after the last word
    value: V


def compound_key(words: Sequence[str]) -> str:
    """The words written as one (``links schenkelblock`` -> ``linksschenkelblock``); only the
    last one loses its ending, so a short final word is never eaten as an ending."""
    return "".join(words[:-1]) + stem(words[-1]) if words else ""


class PhraseIndex(Generic[V]):
    """Terms (as stem sequences and as compounds) -> values; finds them leftmost-longest."""

    def __init__(self, terms: Iterable[tuple[str, V]]) -> None:
        self._by_first: dict[str, list[tuple[tuple[str, ...], tuple[str, ...], V]]] = {}
        self._compounds: dict[str, V] = {}
        for term, value in terms:
            words = tuple(token.word for token in tokenize(fold(term)))
            stems = tuple(stem(word) for word in words)
            if stems:
                self._by_first.setdefault(stems[0], []).append((stems, words, value))
                self._compounds.setdefault(compound_key(words), value)
        for candidates in self._by_first.values():
            candidates.sort(key=lambda candidate: -len(candidate[0]))
        self._firsts = sorted(self._by_first)
        self._longest = max((len(c[0]) for cs in self._by_first.values() for c in cs), default=0)

    def scan(self, tokens: Sequence[Token], start: int = 0, stop: int | None = None) -> list[Match[V]]:
        """Non-overlapping matches in ``tokens[start:stop]``, left to right, longest first."""
        stop = len(tokens) if stop is None else stop
        found: list[Match[V]] = []
        index = start
        while index < stop:
            match = self.match_at(tokens, index, stop)
            if match is None:
                index += 1
            else:
                found.append(match)
                index = match.last
        return found

    def match_at(self, tokens: Sequence[Token], index: int, stop: int | None = None) -> Match[V] | None:
        """The longest term starting at ``tokens[index]`` within its statement."""
        stop = len(tokens) if stop is None else stop
        best: Match[V] | None = None
        for stems, words, value in self._candidates(tokens[index]):
            last = index + len(stems)
            if last > stop or (best is not None and last <= best.last):
                continue
            if _matches(tokens[index:last], stems, words):
                best = Match(index, last, value)
        return self._compound_at(tokens, index, stop, best)

    def _compound_at(self, tokens: Sequence[Token], index: int, stop: int, best: Match[V] | None) -> Match[V] | None:
        """A longer match if the words from ``index`` on, written together, form a term."""
        limit = min(stop, index + self._longest + 1)
        for last in range(limit, index + (best.last - index if best else 0), -1):
            span = tokens[index:last]
            if span[-1].statement != span[0].statement:
                continue
            value = self._compounds.get(compound_key([t.word for t in span]), _MISSING)
            if value is not _MISSING:
                return Match(index, last, value)  # type: ignore[arg-type]
        return best

    def _candidates(self, token: Token) -> list[tuple[tuple[str, ...], tuple[str, ...], V]]:
        candidates = list(self._by_first.get(token.stem, ()))
        if token.abbreviated:
            position = bisect.bisect_left(self._firsts, token.word[:_MIN_STEM])
            while position < len(self._firsts) and self._firsts[position].startswith(token.word[:_MIN_STEM]):
                first = self._firsts[position]
                if first != token.stem:
                    candidates += self._by_first[first]
                position += 1
        return candidates


def _matches(span: Sequence[Token], stems: tuple[str, ...], words: tuple[str, ...]) -> bool:
    """Every word agrees, and the span stays in one statement, except across the dot of
    an abbreviation (``intraventr. leitungsstörung``, ``amplitudkrit. för``)."""
    for position, (token, term_stem, term_word) in enumerate(zip(span, stems, words, strict=True)):
        expanded = token.abbreviated and len(term_word) > len(token.word) and term_word.startswith(token.word)
        if token.stem != term_stem and not expanded:
            return False
        following = span[position + 1] if position + 1 < len(span) else None
        if following is not None and following.statement != token.statement and not token.abbreviated:
            return False
    return True
