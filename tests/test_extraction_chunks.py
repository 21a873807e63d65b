"""Long reports in token-budgeted chunks: the packing itself, with words as tokens (the
engine tests count with the model's tokenizer)."""

from __future__ import annotations

import itertools

import pytest

from kmerl.extraction.chunks import chunk_spans, statement_spans


def _words(text: str) -> int:
    return len(text.split())


def test_statements_cover_the_text_and_end_at_their_punctuation() -> None:
    text = "sinus rhythm. left axis;  normal ecg\nend"
    spans = statement_spans(text)
    assert "".join(text[s:e] for s, e in spans) == text
    assert [text[s:e].strip() for s, e in spans] == ["sinus rhythm.", "left axis;", "normal ecg", "end"]


@pytest.mark.parametrize("budget", [3, 5, 12, 1000])
def test_chunks_cover_the_text_in_order_and_each_fits_its_budget(budget: int) -> None:
    text = "sinusrhythmus. " + "normales ekg mit kleinen zusätzen. " * 30 + "linksschenkelblock."
    chunks = chunk_spans(text, _words, budget)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(text)
    assert all(end == start for (_, end), (start, _) in itertools.pairwise(chunks))
    assert all(_words(text[s:e]) <= budget for s, e in chunks)
    assert len(chunks) == 1 if budget == 1000 else len(chunks) > 1


def test_chunks_keep_statements_whole_when_they_fit() -> None:
    text = "one two three. four five six. seven eight nine."
    assert [text[s:e].strip() for s, e in chunk_spans(text, _words, 7)] == [
        "one two three. four five six.",
        "seven eight nine.",
    ]


def test_a_statement_longer_than_the_budget_is_split_at_whitespace() -> None:
    text = " ".join(f"w{i}" for i in range(40))
    chunks = chunk_spans(text, _words, 7)
    assert all(_words(text[s:e]) <= 7 for s, e in chunks)
    assert all(text[s:e].split() == text[s:e].strip().split(" ") for s, e in chunks)  # no word cut in two
    assert sum(_words(text[s:e]) for s, e in chunks) == 40


def test_a_budget_that_holds_no_text_is_an_error() -> None:
    with pytest.raises(ValueError, match="holds no text"):
        chunk_spans("sinus rhythm.", _words, 0)
