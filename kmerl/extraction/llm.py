"""The LLM extractor: prompts rendered per report, sent in batches to a backend,
answers validated, invalid ones retried, then quarantined.

Three strategies, chosen by the prompt folder:

``checklist``
    The lexicon proposes candidate findings (entity + evidence span); the LLM
    fills one fixed-shape JSON object per report, ``{"<entity_id>": status}``,
    keys given, each value constrained to present / absent / uncertain. The
    shape is fixed, so even a 135M model stops, and no entity can appear
    without evidence in the text. Like the paper's verification pass, it cannot
    add findings the lexicon did not propose.
``verify``
    The same candidates, one request each, decoding constrained to the three
    words (a ``choice`` constraint): simpler for the model, more requests.
``json``
    The LLM writes the whole report's knowledge as JSON constrained by the
    schema (entity-id enum, bounded list). It can find what the lexicon misses,
    but small models repeat items until the token budget runs out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kmerl.extraction.config import ExtractionConfig
from kmerl.extraction.extractor import ExtractedReport, Provenance, QuarantinedReport, ReportOutcome, empty_report
from kmerl.extraction.generation import Constraint, Generation, GenerationBackend, GenerationRequest, GenerationStats
from kmerl.extraction.lexicon import Finding, Lexicon, detect_language
from kmerl.extraction.prompts import Prompt
from kmerl.extraction.schema import SCHEMA_VERSION, STATUSES, KnowledgeSchema, Mention, ReportKnowledge
from kmerl.extraction.text import PreparedReport
from kmerl.extraction.validation import (
    Failure,
    QuarantineReason,
    drop_unsupported_rhythm,
    generation_failure,
    mention_flags,
    parse_choice,
    parse_knowledge,
)
from kmerl.extraction.vocabulary import Vocabulary
from kmerl.hashing import stable_hash

# Bump when a code change alters what the LLM extractor produces for the same prompt and model.
LLM_LOGIC_VERSION = "1"
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class _Item:
    """One request's worth of a report: the prompt variables and what they are about."""

    variables: dict[str, str]
    finding: Finding | None = None  # verify: the one candidate asked about
    candidates: tuple[Finding, ...] = ()  # checklist: every candidate of the report


class _Strategy(Protocol):
    max_tokens: int

    def items(self, report: PreparedReport) -> tuple[list[_Item], tuple[str, ...]]: ...

    def request_constraint(self, item: _Item) -> Constraint: ...

    def parse(self, generation: Generation, item: _Item) -> Any: ...

    def assemble(self, report: PreparedReport, items: list[_Item], answers: list[Any]) -> ReportKnowledge: ...


class _Verify:
    def __init__(self, lexicon: Lexicon, config: ExtractionConfig) -> None:
        self.lexicon = lexicon
        self.constraint = Constraint(choices=STATUSES)
        self.max_tokens = config.sampling.max_tokens_choice
        self.max_mentions = config.max_mentions
        self.context_chars = config.context_chars

    def items(self, report: PreparedReport) -> tuple[list[_Item], tuple[str, ...]]:
        candidates, notes = _candidates(self.lexicon, report, self.max_mentions)
        items = [
            _Item(
                {
                    "context": self._context(report.text, f),
                    "finding": self.lexicon.vocabulary.entity(f.entity_id).name,
                    "evidence": _SPACES.sub(" ", f.evidence),
                },
                f,
            )
            for f in candidates
        ]
        return items, notes

    def _context(self, text: str, finding: Finding) -> str:
        # Short reports are shown whole, so the report's candidates share a cached prefix.
        if len(text) <= self.context_chars:
            return _SPACES.sub(" ", text).strip()
        half = self.context_chars // 2
        start, end = max(0, finding.start - half), min(len(text), finding.end + half)
        return _SPACES.sub(" ", text[start:end]).strip()

    def request_constraint(self, item: _Item) -> Constraint:
        return self.constraint

    def parse(self, generation: Generation, item: _Item) -> str | Failure:
        return parse_choice(generation, STATUSES, self.max_tokens)

    def assemble(self, report: PreparedReport, items: list[_Item], answers: list[Any]) -> ReportKnowledge:
        decided = [(i.finding, status) for i, status in zip(items, answers, strict=True) if i.finding is not None]
        return _verified_knowledge(self.lexicon, report, decided)


class _Checklist:
    def __init__(self, lexicon: Lexicon, config: ExtractionConfig) -> None:
        self.lexicon = lexicon
        self.max_tokens = config.sampling.max_tokens_json
        self.max_mentions = config.max_mentions
        self.max_report_chars = config.max_report_chars

    def items(self, report: PreparedReport) -> tuple[list[_Item], tuple[str, ...]]:
        candidates, notes = _candidates(self.lexicon, report, self.max_mentions)
        if not candidates:
            return [], notes
        text = _SPACES.sub(" ", report.text).strip()
        if len(text) > self.max_report_chars:
            notes = (*notes, f"report cut to its first {self.max_report_chars} of {len(text)} characters for the LLM")
            text = text[: self.max_report_chars]
        findings = "\n".join(
            f'- {f.entity_id}: {self.lexicon.vocabulary.entity(f.entity_id).name} (written "{_SPACES.sub(" ", f.evidence)}")'
            for f in candidates
        )
        return [_Item({"report": text, "findings": findings}, candidates=tuple(candidates))], notes

    def request_constraint(self, item: _Item) -> Constraint:
        properties = {f.entity_id: {"enum": list(STATUSES)} for f in item.candidates}
        return Constraint(
            json_schema={"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
        )

    def parse(self, generation: Generation, item: _Item) -> dict[str, str] | Failure:
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

    def assemble(self, report: PreparedReport, items: list[_Item], answers: list[Any]) -> ReportKnowledge:
        decided = [(f, answer[f.entity_id]) for item, answer in zip(items, answers, strict=True) for f in item.candidates]
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


def _verified_knowledge(lexicon: Lexicon, report: PreparedReport, decided: list[tuple[Finding, str]]) -> ReportKnowledge:
    mentions = tuple(
        Mention(entity_id=f.entity_id, status=status, leads=f.leads, evidence=f.evidence) for f, status in decided  # type: ignore[arg-type]
    )
    rhythm_ids = set(lexicon.vocabulary.ids_in("rhythm"))
    return ReportKnowledge(
        language=detect_language(report.text),
        rhythm=next((m.entity_id for m in mentions if m.status == "present" and m.entity_id in rhythm_ids), None),
        heart_axis=lexicon.heart_axis(report.text),
        mentions=mentions,
    )


class _Json:
    def __init__(self, schema: KnowledgeSchema, config: ExtractionConfig) -> None:
        self.schema = schema
        self.constraint = Constraint(json_schema=schema.json_schema)
        self.max_tokens = config.sampling.max_tokens_json
        self.max_report_chars = config.max_report_chars

    def items(self, report: PreparedReport) -> tuple[list[_Item], tuple[str, ...]]:
        text = report.text
        notes = ()
        if len(text) > self.max_report_chars:
            notes = (f"report cut to its first {self.max_report_chars} of {len(text)} characters for the LLM",)
            text = text[: self.max_report_chars]
        return [_Item({"report": text})], notes

    def request_constraint(self, item: _Item) -> Constraint:
        return self.constraint

    def parse(self, generation: Generation, item: _Item) -> ReportKnowledge | Failure:
        return parse_knowledge(generation, self.schema, self.max_tokens)

    def assemble(self, report: PreparedReport, items: list[_Item], answers: list[Any]) -> ReportKnowledge:
        return answers[0]


class LlmExtractor:
    """Knowledge from an LLM backend under one prompt; see the module docstring."""

    def __init__(self, backend: GenerationBackend, prompt: Prompt, vocabulary: Vocabulary, config: ExtractionConfig) -> None:
        self.backend = backend
        self.prompt = prompt
        self.config = config
        self.schema = KnowledgeSchema(vocabulary, config.max_mentions)
        lexicon = Lexicon(vocabulary)
        strategies = {"verify": _Verify, "checklist": _Checklist}
        self.strategy: _Strategy = strategies[prompt.strategy](lexicon, config) if prompt.strategy in strategies else _Json(self.schema, config)
        self.provenance = llm_provenance(prompt, vocabulary, self.schema, backend.model_id, config)

    @property
    def stats(self) -> GenerationStats:
        return self.backend.stats

    def extract(self, reports: Sequence[PreparedReport]) -> list[ReportOutcome]:
        """All requests of the batch go to the backend together; invalid answers are
        re-asked (seeded sampling) up to ``retries`` times, again together."""
        plans = [self.strategy.items(r) if not r.is_blank else ([], ()) for r in reports]
        state = _BatchState()
        pending = [(r, i) for r, (items, _) in enumerate(plans) for i in range(len(items))]
        for attempt in range(self.config.sampling.retries + 1):
            if not pending:
                break
            requests = [self._request(plans[r][0][i], attempt) for r, i in pending]
            retry = []
            for key, generation in zip(pending, self.backend.generate(requests), strict=True):
                state.tries[key] = attempt + 1
                parsed = self.strategy.parse(generation, plans[key[0]][0][key[1]])
                if isinstance(parsed, Failure):
                    state.failures[key] = (parsed, generation.text)
                    retry.append(key)
                else:
                    state.answers[key] = parsed
                    state.failures.pop(key, None)
            pending = retry
        return [self._outcome(r, report, *plan, state) for r, (report, plan) in enumerate(zip(reports, plans, strict=True))]

    def _request(self, item: _Item, attempt: int) -> GenerationRequest:
        sampling = self.config.sampling
        return GenerationRequest(
            messages=tuple(self.prompt.messages(item.variables)),
            constraint=self.strategy.request_constraint(item),
            max_tokens=self.strategy.max_tokens,
            temperature=sampling.temperature if attempt == 0 else sampling.retry_temperature,
            seed=sampling.seed + attempt,
        )

    def _outcome(
        self, index: int, report: PreparedReport, items: list[_Item], notes: tuple[str, ...], state: _BatchState
    ) -> ReportOutcome:
        if report.is_blank:
            return empty_report(report)
        keys = [(index, i) for i in range(len(items))]
        attempts = max((state.tries[key] for key in keys), default=0)
        for key in keys:
            if key in state.failures:
                failure, raw = state.failures[key]
                return QuarantinedReport(report, failure.reason, f"{report.key}: {failure.detail}", raw, attempts)
        answers = [state.answers[key] for key in keys]
        knowledge = self.schema.validate(self.strategy.assemble(report, items, answers))
        flags = mention_flags(knowledge, report.text)
        knowledge, dropped = drop_unsupported_rhythm(knowledge, flags)
        return ExtractedReport(report, knowledge, flags, (*report.notes, *notes, *dropped), _raw(items, answers), attempts)


@dataclass(slots=True)
class _BatchState:
    answers: dict[tuple[int, int], Any] = field(default_factory=dict)
    failures: dict[tuple[int, int], tuple[Failure, str]] = field(default_factory=dict)
    tries: dict[tuple[int, int], int] = field(default_factory=dict)


def _raw(items: list[_Item], answers: list[Any]) -> str:
    if len(items) == 1 and isinstance(answers[0], ReportKnowledge):
        return answers[0].model_dump_json()
    return "\n".join(f"{i.finding.entity_id if i.finding else '?'}={a}" for i, a in zip(items, answers, strict=True))


def llm_provenance(
    prompt: Prompt, vocabulary: Vocabulary, schema: KnowledgeSchema, model_id: str, config: ExtractionConfig
) -> Provenance:
    """The prompt version: a hash of the template, examples, schema, vocabulary,
    model and sampling parameters, and the strategy's own parameters."""
    parameters: dict[str, object] = {
        "sampling": config.sampling.model_dump(),
        "max_mentions": config.max_mentions,
        "max_report_chars": config.max_report_chars,
        "context_chars": config.context_chars,
    }
    version = stable_hash("llm", LLM_LOGIC_VERSION, prompt, schema.version, vocabulary.content_hash, model_id, parameters)
    return Provenance(
        extractor="llm",
        prompt_version=version,
        prompt_name=prompt.name,
        strategy=prompt.strategy,
        model=model_id,
        schema_version=f"{SCHEMA_VERSION}/{schema.version}",
        vocabulary_version=f"{vocabulary.version}/{vocabulary.content_hash}",
        parameters=parameters,
    )
