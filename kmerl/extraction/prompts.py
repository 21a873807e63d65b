"""Prompts as plain files users edit: a folder per prompt.

::

    prompt.toml      strategy ("checklist", "verify" or "json") and a description
    system.md        the instructions (system message)
    user.md          the message for one item, with $placeholders
    examples.jsonl   few-shot examples: {"variables": {...}, "answer": ...}

Everything in the folder is part of the prompt version, so editing any file
re-extracts under a new version while the old one stays queryable.
"""

from __future__ import annotations

import json
import string
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
DEFAULT_PROMPT = PROMPTS_DIR / "checklist"  # measured best on PTB-XL with the embedded model (bench/README.md)

Strategy = Literal["checklist", "verify", "json"]


class PromptError(ValueError):
    pass


class Example(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    variables: dict[str, str]
    answer: str | dict[str, Any]

    @property
    def answer_text(self) -> str:
        # Compact JSON: the engine decodes without free whitespace, so examples must show none.
        return self.answer if isinstance(self.answer, str) else json.dumps(self.answer, separators=(",", ":"))


class Prompt(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    strategy: Strategy
    description: str = ""
    system: str
    user: str
    examples: tuple[Example, ...] = Field(default=())

    def messages(self, variables: dict[str, str]) -> list[dict[str, str]]:
        """System message, the examples as earlier turns, then the item.

        Everything before the last message is identical for every item, so
        the engine's prefix cache computes it once.
        """
        messages = [{"role": "system", "content": self.system}]
        for example in self.examples:
            messages.append({"role": "user", "content": self.render(example.variables)})
            messages.append({"role": "assistant", "content": example.answer_text})
        messages.append({"role": "user", "content": self.render(variables)})
        return messages

    def render(self, variables: dict[str, str]) -> str:
        try:
            return string.Template(self.user).substitute(variables)
        except (KeyError, ValueError) as error:
            raise PromptError(f"prompt {self.name!r}: user.md needs placeholder {error}") from error


class _Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Strategy
    description: str = ""


def load_prompt(folder: Path) -> Prompt:
    """Read a prompt folder; every problem names the file it is in."""
    try:
        manifest = _Manifest.model_validate(tomllib.loads(_read(folder / "prompt.toml")))
    except (tomllib.TOMLDecodeError, ValidationError) as error:
        raise PromptError(f"{folder / 'prompt.toml'}: {error}") from error
    examples = []
    examples_file = folder / "examples.jsonl"
    if examples_file.exists():
        for number, line in enumerate(_read(examples_file).splitlines(), start=1):
            if line.strip():
                try:
                    examples.append(Example.model_validate_json(line))
                except ValidationError as error:
                    raise PromptError(f"{examples_file}:{number}: {error}") from error
    prompt = Prompt(
        name=folder.name,
        strategy=manifest.strategy,
        description=manifest.description,
        system=_read(folder / "system.md").strip(),
        user=_read(folder / "user.md").strip(),
        examples=tuple(examples),
    )
    for example in prompt.examples:
        prompt.render(example.variables)  # fail at load time, not mid-run
    return prompt


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise PromptError(f"prompt file {path}: {error.strerror}") from error
