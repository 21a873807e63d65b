"""Checks every output passes before it counts as knowledge.

An answer that cannot be parsed into the schema is retried, then quarantined
with its raw text and the reason. A mention whose evidence does not occur in
the report is kept but flagged, and flagged mentions never become entities.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from pydantic import ValidationError

from kmerl.extraction.generation import Generation
from kmerl.extraction.schema import KnowledgeSchema, ReportKnowledge
from kmerl.extraction.text import fold
from kmerl.extraction.vocabulary import Vocabulary


class QuarantineReason(str, Enum):
    """Why a report has no knowledge under a version. Stable codes: auditors group by them."""

    BACKEND_ERROR = "backend_error"
    TRUNCATED_OUTPUT = "truncated_output"
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    INVALID_CHOICE = "invalid_choice"


class MentionFlag(str, Enum):
    EVIDENCE_NOT_IN_REPORT = "evidence_not_in_report"
    EMPTY_EVIDENCE = "empty_evidence"
    WITHHELD_IN_CONTEXT = "withheld_in_context"  # evidence found; a context the vocabulary withholds

    @property
    def evidence_found(self) -> bool:
        return self is MentionFlag.WITHHELD_IN_CONTEXT


@dataclass(frozen=True, slots=True)
class Failure:
    reason: QuarantineReason
    detail: str


def generation_failure(generation: Generation, max_tokens: int) -> Failure | None:
    """Failures visible before parsing: the request failed or hit its token budget."""
    if generation.error is not None:
        return Failure(QuarantineReason.BACKEND_ERROR, generation.error)
    if generation.finish_reason == "length":
        return Failure(
            QuarantineReason.TRUNCATED_OUTPUT, f"stopped at max_tokens={max_tokens} before the answer was complete"
        )
    return None


def parse_knowledge(generation: Generation, schema: KnowledgeSchema, max_tokens: int) -> ReportKnowledge | Failure:
    if failure := generation_failure(generation, max_tokens):
        return failure
    try:
        return schema.validate_json(generation.text)
    except ValidationError as error:
        try:
            json.loads(generation.text)
        except json.JSONDecodeError as decode_error:
            return Failure(QuarantineReason.INVALID_JSON, str(decode_error))
        return Failure(QuarantineReason.SCHEMA_VIOLATION, _summary(error))


def parse_choice(generation: Generation, choices: tuple[str, ...], max_tokens: int) -> str | Failure:
    if failure := generation_failure(generation, max_tokens):
        return failure
    answer = generation.text.strip()
    if answer not in choices:
        return Failure(QuarantineReason.INVALID_CHOICE, f"{answer[:80]!r} is not one of {list(choices)}")
    return answer


def mention_flags(
    knowledge: ReportKnowledge, text: str, vocabulary: Vocabulary | None = None
) -> tuple[MentionFlag | None, ...]:
    """Per mention: ``None`` when it is an entity of the report, else why not: its evidence
    is not in the report (compared folded: case, accents and spacing may differ, words may
    not), or ``vocabulary`` withholds mentions like it (``Vocabulary.withheld``; without a
    vocabulary only the evidence is checked)."""
    folded_text = fold(text).folded
    machine_report = vocabulary is not None and vocabulary.is_machine_report(folded_text)
    flags: list[MentionFlag | None] = []
    for mention in knowledge.mentions:
        evidence = fold(mention.evidence).folded
        if not evidence:
            flags.append(MentionFlag.EMPTY_EVIDENCE)
        elif evidence not in folded_text:
            flags.append(MentionFlag.EVIDENCE_NOT_IN_REPORT)
        elif vocabulary is not None and vocabulary.withholds(
            mention.entity_id, mention.status, machine_report, mention.evidence
        ):
            flags.append(MentionFlag.WITHHELD_IN_CONTEXT)
        else:
            flags.append(None)
    return tuple(flags)


def _summary(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
