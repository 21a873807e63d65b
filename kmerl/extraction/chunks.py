"""Long reports in pieces that fit the model's context, counted in tokens.

A prompt is budgeted with the model's own tokenizer (:class:`TokenCounter`): a
character budget is wrong both ways (an umlaut or a digit run costs several tokens,
a common word one). A report whose prompt does not fit is read in chunks: whole
statements packed in order while their tokens fit, a statement longer than a chunk
split at whitespace. Chunks are spans of the original text, so evidence quoted from
a chunk is evidence of the report, at the same offsets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol

from kmerl.extraction.prompts import Prompt

# A statement ends at a full stop, semicolon or line break followed by space, or at a
# run of spaces (machine-written reports separate statements that way; see text.py).
_STATEMENT_END = re.compile(r"[.;]\s+|\n\s*|\s{3,}")
_SPACE = re.compile(r"\s+")
# Joining two pieces can merge or split a token at the seam: one token of slack per seam.
_SEAM_TOKENS = 1

Span = tuple[int, int]


class TokenCounter(Protocol):
    """The model's tokenizer, as a backend exposes it."""

    def count_tokens(self, text: str) -> int: ...

    def count_chat_tokens(self, messages: Sequence[dict[str, str]]) -> int: ...


class PromptBudget:
    """Whether a prompt's rendered chat fits ``max_tokens``, and how much room a report has."""

    def __init__(self, prompt: Prompt, counter: TokenCounter, max_tokens: int) -> None:
        self.prompt = prompt
        self.counter = counter
        self.max_tokens = max_tokens

    def tokens(self, variables: dict[str, str]) -> int:
        return self.counter.count_chat_tokens(self.prompt.messages(variables))

    def fits(self, variables: dict[str, str]) -> bool:
        return self.tokens(variables) <= self.max_tokens

    def room(self, variables: dict[str, str], slot: str) -> int:
        """Tokens left for ``variables[slot]`` once everything else of the prompt is counted."""
        return self.max_tokens - self.tokens({**variables, slot: ""})


def statement_spans(text: str) -> list[Span]:
    """Consecutive spans covering ``text``, each one statement with its closing punctuation."""
    spans: list[Span] = []
    start = 0
    for match in _STATEMENT_END.finditer(text):
        if match.end() > start:
            spans.append((start, match.end()))
            start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def chunk_spans(text: str, count: Callable[[str], int], budget: int) -> list[Span]:
    """Spans of ``text`` of at most ``budget`` tokens each, covering it in order.

    Statements are packed greedily; one longer than the budget is halved at the
    whitespace nearest its middle until its pieces fit (a single unbroken run of
    characters over the budget is halved anywhere).
    """
    if budget <= _SEAM_TOKENS:
        raise ValueError(f"a chunk budget of {budget} tokens holds no text")
    pieces = [piece for span in statement_spans(text) for piece in _fitting(text, span, count, budget)]
    chunks: list[Span] = []
    current: Span | None = None
    used = 0
    for (start, end), tokens in pieces:
        if current is not None and used + _SEAM_TOKENS + tokens <= budget:
            current, used = (current[0], end), used + _SEAM_TOKENS + tokens
            continue
        if current is not None:
            chunks.append(current)
        current, used = (start, end), tokens
    if current is not None:
        chunks.append(current)
    return chunks


def _fitting(text: str, span: Span, count: Callable[[str], int], budget: int) -> list[tuple[Span, int]]:
    start, end = span
    tokens = count(text[start:end])
    if tokens <= budget or end - start < 2:
        return [(span, tokens)]
    middle = _split_point(text, start, end)
    return _fitting(text, (start, middle), count, budget) + _fitting(text, (middle, end), count, budget)


def _split_point(text: str, start: int, end: int) -> int:
    """The end of the whitespace run nearest the middle of ``text[start:end]``, or the middle."""
    middle = (start + end) // 2
    best = middle
    for match in _SPACE.finditer(text, start + 1, end - 1):
        if abs(match.end() - middle) < abs(best - middle) or best == middle:
            best = match.end()
        if match.start() > middle:
            break
    return best
