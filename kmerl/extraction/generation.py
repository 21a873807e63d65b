"""What every LLM backend takes and returns: chat requests under a decoding
constraint, and the generated text with why it stopped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Constraint:
    """Structured outputs: exactly one of a JSON schema or a list of choices."""

    json_schema: dict[str, Any] | None = None
    choices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.json_schema is None) == (self.choices is None):
            raise ValueError("a constraint is either a JSON schema or a list of choices")


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    messages: tuple[dict[str, str], ...]
    constraint: Constraint
    max_tokens: int
    temperature: float
    seed: int


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    finish_reason: str | None  # "stop", "length", ... as the engine says; None when the request failed
    output_tokens: int
    error: str | None = None


@dataclass(slots=True)
class GenerationStats:
    """Counts over a backend's lifetime; the cache test asserts ``requests`` stays 0."""

    requests: int = 0
    output_tokens: int = 0
    finish_reasons: dict[str, int] = field(default_factory=dict)
    errors: int = 0

    def record(self, generations: Sequence[Generation]) -> None:
        self.requests += len(generations)
        for generation in generations:
            self.output_tokens += generation.output_tokens
            reason = generation.finish_reason or "error"
            self.finish_reasons[reason] = self.finish_reasons.get(reason, 0) + 1
            self.errors += generation.error is not None


class GenerationBackend(Protocol):
    """An LLM that answers batches of constrained chat requests, and counts tokens as it does."""

    model_id: str

    @property
    def stats(self) -> GenerationStats: ...

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]: ...

    def count_tokens(self, text: str) -> int: ...

    def count_chat_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        """Tokens of the chat as the model sees it: template applied, generation prompt added."""
        ...

    def close(self) -> None: ...
