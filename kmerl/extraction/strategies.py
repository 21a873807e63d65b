"""How an LLM is asked about a report: one class per prompt strategy.

Each turns a report into request items, says which decoding constraint each
request gets, parses an answer (or says why it failed) and assembles the
report's knowledge from the answers. See :mod:`kmerl.extraction.llm` for what
the strategies are for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kmerl.extraction.chunks import PromptBudget, Span, chunk_spans
from kmerl.extraction.config import ExtractionConfig
from kmerl.extraction.generation import Constraint, Generation
from kmerl.extraction.lexicon import Finding, Lexicon, detect_language
from kmerl.extraction.schema import STATUSES, KnowledgeSchema, Mention, ReportKnowledge, Status
from kmerl.extraction.text import PreparedReport
from kmerl.extraction.validation import Failure, QuarantineReason, generation_failure, parse_choice, parse_knowledge

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Item:
    """One request's worth of a report: the prompt variables and what they are about."""

    variables: dict[str, str]
    finding: Finding | None = None  # verify: the one candidate asked about
    candidates: tuple[Finding, ...] = ()  # checklist: every candidate of the report


class Strategy(Protocol):
    max_tokens: int

    def items(self, report: PreparedReport) -> tuple[list[Item], tuple[str, ...]]: ...

    def request_constraint(self, item: Item) -> Constraint: ...

    def parse(self, generation: Generation, item: Item) -> Any: ...

    def assemble(self, report: PreparedReport, items: list[Item], answers: list[Any]) -> ReportKnowledge: ...


class Verify:
    def __init__(self, lexicon: Lexicon, config: ExtractionConfig) -> None:
        self.lexicon = lexicon
        self.constraint = Constraint(choices=STATUSES)
        self.max_tokens = config.sampling.max_tokens_choice
        self.max_mentions = config.max_mentions
        self.context_chars = config.context_chars

    def items(self, report: PreparedReport) -> tuple[list[Item], tuple[str, ...]]:
        candidates, notes = _candidates(self.lexicon, report, self.max_mentions)
        items = [
            Item(
                {
                    "context": self._context(report.text, f),
                    "finding": self.lexicon.vocabulary.entity(f.entity_id).name,
                    "evidence": _flat(f.evidence),
                },
                f,
            )
            for f in candidates
        ]
        return items, notes

    def _context(self, text: str, finding: Finding) -> str:
        # Short reports are shown whole, so the report's candidates share a cached prefix.
        if len(text) <= self.context_chars:
            return _flat(text)
        half = self.context_chars // 2
        start, end = max(0, finding.start - half), min(len(text), finding.end + half)
        return _flat(text[start:end])

    def request_constraint(self, item: Item) -> Constraint:
        return self.constraint

    def parse(self, generation: Generation, item: Item) -> str | Failure:
        return parse_choice(generation, STATUSES, self.max_tokens)

    def assemble(self, report: PreparedReport, items: list[Item], answers: list[Any]) -> ReportKnowledge:
        decided = [(i.finding, status) for i, status in zip(items, answers, strict=True) if i.finding is not None]
        return _verified_knowledge(self.lexicon, report, decided)


class Checklist:
    def __init__(self, lexicon: Lexicon, config: ExtractionConfig, budget: PromptBudget) -> None:
        self.lexicon = lexicon
        self.max_tokens = config.sampling.max_tokens_json
        self.max_mentions = config.max_mentions
        self.budget = budget

    def items(self, report: PreparedReport) -> tuple[list[Item], tuple[str, ...]]:
        """One item per report; a report whose prompt does not fit, one per chunk that
        holds candidates, each with the candidates that start in it."""
        candidates, notes = _candidates(self.lexicon, report, self.max_mentions)
        if not candidates:
            return [], notes
        whole = self._item(report.text, candidates)
        if self.budget.fits(whole.variables):
            return [whole], notes
        chunks, note = _chunks(report.text, self.budget, whole.variables, "report")
        items = [
            self._item(report.text[start:end], inside)
            for start, end in chunks
            if (inside := [f for f in candidates if start <= f.start < end])
        ]
        return items, (*notes, note)

    def _item(self, text: str, candidates: Sequence[Finding]) -> Item:
        findings = "\n".join(
            f'- {f.entity_id}: {self.lexicon.vocabulary.entity(f.entity_id).name} (written "{_flat(f.evidence)}")'
            for f in candidates
        )
        return Item({"report": _flat(text), "findings": findings}, candidates=tuple(candidates))

    def request_constraint(self, item: Item) -> Constraint:
        properties = {f.entity_id: {"enum": list(STATUSES)} for f in item.candidates}
        return Constraint(
            json_schema={
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            }
        )

    def parse(self, generation: Generation, item: Item) -> dict[str, str] | Failure:
        if failure := generation_failure(generation, self.max_tokens):
            return failure
        try:
            answer = json.loads(generation.text)
        except json.JSONDecodeError as error:
            return Failure(QuarantineReason.INVALID_JSON, str(error))
        expected = {f.entity_id for f in item.candidates}
        if not isinstance(answer, dict) or set(answer) != expected or not all(v in STATUSES for v in answer.values()):
            return Failure(QuarantineReason.SCHEMA_VIOLATION, f"expected a status for each of {sorted(expected)}")
        return answer

    def assemble(self, report: PreparedReport, items: list[Item], answers: list[Any]) -> ReportKnowledge:
        decided = [
            (f, answer[f.entity_id]) for item, answer in zip(items, answers, strict=True) for f in item.candidates
        ]
        return _verified_knowledge(self.lexicon, report, decided)


def _candidates(lexicon: Lexicon, report: PreparedReport, limit: int) -> tuple[list[Finding], tuple[str, ...]]:
    """The lexicon's findings, one per entity (first occurrence), at most ``limit``."""
    first: dict[str, Finding] = {}
    for finding in lexicon.findings(report.text):
        first.setdefault(finding.entity_id, finding)
    candidates = list(first.values())
    notes: tuple[str, ...] = ()
    if len(candidates) > limit:
        notes = (f"{len(candidates) - limit} candidate findings beyond the first {limit} not verified",)
    return candidates[:limit], notes


def _verified_knowledge(
    lexicon: Lexicon, report: PreparedReport, decided: list[tuple[Finding, Status]]
) -> ReportKnowledge:
    mentions = tuple(
        Mention(entity_id=f.entity_id, status=status, leads=f.leads, evidence=f.evidence) for f, status in decided
    )
    rhythm_ids = set(lexicon.vocabulary.ids_in("rhythm"))
    return ReportKnowledge(
        language=detect_language(report.text),
        rhythm=next((m.entity_id for m in mentions if m.status == "present" and m.entity_id in rhythm_ids), None),
        heart_axis=lexicon.heart_axis(report.text),
        mentions=mentions,
    )


class Json:
    def __init__(self, schema: KnowledgeSchema, config: ExtractionConfig, budget: PromptBudget) -> None:
        self.schema = schema
        self.constraint = Constraint(json_schema=schema.json_schema)
        self.max_tokens = config.sampling.max_tokens_json
        self.budget = budget

    def items(self, report: PreparedReport) -> tuple[list[Item], tuple[str, ...]]:
        whole = Item({"report": _flat(report.text)})
        if self.budget.fits(whole.variables):
            return [whole], ()
        chunks, note = _chunks(report.text, self.budget, whole.variables, "report")
        return [Item({"report": _flat(report.text[start:end])}) for start, end in chunks], (note,)

    def request_constraint(self, item: Item) -> Constraint:
        return self.constraint

    def parse(self, generation: Generation, item: Item) -> ReportKnowledge | Failure:
        return parse_knowledge(generation, self.schema, self.max_tokens)

    def assemble(self, report: PreparedReport, items: list[Item], answers: list[Any]) -> ReportKnowledge:
        """The chunks' answers as one: the first answer's language, the first rhythm and
        axis any chunk states, each entity's first mention."""
        first, *rest = answers
        if not rest:
            return first
        mentions: dict[str, Mention] = {}
        for answer in answers:
            for mention in answer.mentions:
                mentions.setdefault(mention.entity_id, mention)
        return first.model_copy(
            update={
                "rhythm": next((a.rhythm for a in answers if a.rhythm), None),
                "heart_axis": next((a.heart_axis for a in answers if a.heart_axis), None),
                "mentions": tuple(mentions.values())[: self.schema.max_mentions],
            }
        )


def _flat(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _chunks(text: str, budget: PromptBudget, variables: dict[str, str], slot: str) -> tuple[list[Span], str]:
    """The report's chunks for ``slot`` of a prompt whose other variables are ``variables``."""
    room = budget.room(variables, slot)
    if room <= 0:
        raise ValueError(
            f"the prompt without the report takes {budget.max_tokens - room} of {budget.max_tokens} tokens"
        )
    chunks = chunk_spans(text, lambda piece: budget.counter.count_tokens(_flat(piece)), room)
    return chunks, f"report read by the LLM in {len(chunks)} chunks of at most {room} tokens"


def make_strategy(
    name: str, lexicon: Lexicon, schema: KnowledgeSchema, config: ExtractionConfig, budget: PromptBudget
) -> Strategy:
    if name == "checklist":
        return Checklist(lexicon, config, budget)
    if name == "verify":
        return Verify(lexicon, config)
    return Json(schema, config, budget)
