"""Report text: decoding, the normalised form that keys the cache, and a folded
form for matching that maps back to the original characters.

Reports arrive messy: PTB-XL mixes German, English and Swedish, spells umlauts
in upper case inside lower-case words (``unvollstÄndiger``), writes ``ü`` as
``#`` (``f#r``) and pads statements with runs of spaces. Matching runs on a
folded copy (lower case, no diacritics, single spaces) while every match is
reported as a span of the original text, so evidence is always a verbatim copy.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from kmerl.hashing import stable_hash

INVALID_UTF8_NOTE = "invalid UTF-8 bytes replaced by U+FFFD"
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class PreparedReport:
    """One distinct report text, ready for extraction."""

    key: str
    text: str
    notes: tuple[str, ...] = ()

    @property
    def is_blank(self) -> bool:
        return not self.text.strip()


def decode_report(raw: str | bytes | None) -> tuple[str, tuple[str, ...]]:
    """The report as text; undecodable bytes are replaced and noted, never fatal."""
    if raw is None:
        return "", ()
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8"), ()
        except UnicodeDecodeError:
            return raw.decode("utf-8", errors="replace"), (INVALID_UTF8_NOTE,)
    return raw, ()


def normalise_report(text: str) -> str:
    """The form two reports must share to be the same report: NFC, case-folded,
    whitespace collapsed. Spelling and punctuation are kept: they can carry meaning."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text).casefold()).strip()


def report_key(raw: str | bytes | None) -> str:
    """The cache key of a report: a stable hash of its normalised text.

    Downstream code joins ``record_id -> report_key -> entities`` with it, so it
    must stay stable across runs, machines and Python versions.
    """
    text, _ = decode_report(raw)
    return stable_hash("report", normalise_report(text))


def prepare_report(raw: str | bytes | None) -> PreparedReport:
    text, notes = decode_report(raw)
    return PreparedReport(key=report_key(text), text=text, notes=notes)


@dataclass(frozen=True, slots=True)
class FoldedText:
    """``folded[i]`` comes from ``original[starts[i]:ends[i]]``; ``breaks`` are the
    folded positions of whitespace runs long enough to separate statements (a hint)."""

    original: str
    folded: str
    starts: tuple[int, ...] = field(repr=False)
    ends: tuple[int, ...] = field(repr=False)
    breaks: frozenset[int] = field(default=frozenset(), repr=False)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original character span of the folded span ``[start, end)``."""
        return self.starts[start], self.ends[end - 1]


# German writes an umlaut as a digraph where the keyboard has none ("veraenderungen",
# "leitungsstoerung", "ueberdrehter"); folding both spellings to one letter lets a
# term match either. Inside a word only, where German puts them ("due", "true" keep
# theirs); English words with such digraphs fold the same way on both sides of a
# match, so nothing is lost.
_DIGRAPH_HEADS = frozenset("aou")
# A run of this many spaces (or a line break) often separates statements in machine-written
# reports ("qrs(t) abnorm    inferiorer infarkt"), but fixed-width line wrapping leaves the
# same gaps inside phrases ("old inferior    myocardial infarction"): a hint, not a boundary.
STATEMENT_GAP = 3


def fold(text: str) -> FoldedText:
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    breaks: set[int] = set()
    gap_start: int | None = None
    for index, char in enumerate(text):
        if char.isspace():
            if gap_start is None:
                gap_start = index
            continue
        if gap_start is not None:
            if chars:
                gap = text[gap_start:index]
                if len(gap) >= STATEMENT_GAP or "\n" in gap:
                    breaks.add(len(chars))
                chars.append(" ")
                starts.append(gap_start)
                ends.append(index)
            gap_start = None
        for folded_char in _fold_char(char):
            if (
                folded_char == "e"
                and chars
                and chars[-1] in _DIGRAPH_HEADS
                and ends[-1] == index
                and _letter_at(text, index + 1)
            ):
                ends[-1] = index + 1  # "ae" -> "a": the digraph's letters share one folded character
                continue
            chars.append(folded_char)
            starts.append(index)
            ends.append(index + 1)
    return FoldedText(text, "".join(chars), tuple(starts), tuple(ends), frozenset(breaks))


def _letter_at(text: str, index: int) -> bool:
    return index < len(text) and text[index].isalpha()


def fold_term(term: str) -> str:
    return fold(term).folded


def _fold_char(char: str) -> str:
    if char == "#":
        return "u"  # PTB-XL's encoding of "ü" ("f#r", "#bergang"); never meaningful in a report otherwise
    lowered = char.lower()
    if lowered == "ß":
        return "ss"
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))
