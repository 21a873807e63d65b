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
    """``folded[i]`` comes from ``original[origin[i]]``."""

    original: str
    folded: str
    origin: tuple[int, ...] = field(repr=False)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original character span of the folded span ``[start, end)``."""
        return self.origin[start], self.origin[end - 1] + 1


def fold(text: str) -> FoldedText:
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char.isspace():
            if chars and chars[-1] != " ":
                chars.append(" ")
                origin.append(index)
            continue
        for folded_char in _fold_char(char):
            chars.append(folded_char)
            origin.append(index)
    while chars and chars[-1] == " ":
        chars.pop()
        origin.pop()
    return FoldedText(text, "".join(chars), tuple(origin))


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
