"""The LLM extractor: prompts rendered per report, sent in batches to a backend,
answers validated, invalid ones retried, then quarantined.

The LLM can only add. Every report's knowledge starts from the lexicon's reading; what
the model answers is merged into it (:func:`add_only`): it confirms a lexicon finding
(``decided_by = "both"``), or adds an entity the lexicon did not find, with its evidence
(``"llm"``; flagged and never an entity when the evidence is not in the report). It never
removes a finding or changes a status the rules read: measured on reports outside the
sample, a model that overrules them loses more true findings than it corrects.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kmerl.extraction.chunks import PromptBudget
from kmerl.extraction.config import ExtractionConfig
from kmerl.extraction.extractor import (
    BOTH_DECIDED,
    LEXICON_DECIDED,
    LLM_DECIDED,
    Decider,
    ExtractedReport,
    Provenance,
    QuarantinedReport,
    ReportOutcome,
    empty_report,
)
from kmerl.extraction.gaps import unmatched_statements
from kmerl.extraction.generation import GenerationBackend, GenerationRequest, GenerationStats
from kmerl.extraction.lexicon import Lexicon, knowledge_from_reading
from kmerl.extraction.prompts import Prompt
from kmerl.extraction.schema import SCHEMA_VERSION, KnowledgeSchema, ReportKnowledge
from kmerl.extraction.strategies import Item, Strategy, make_strategy
from kmerl.extraction.text import PreparedReport
from kmerl.extraction.validation import Failure, mention_flags
from kmerl.extraction.vocabulary import Vocabulary
from kmerl.hashing import stable_hash

# Bump when a code change alters what the LLM extractor produces for the same prompt and model.
LLM_LOGIC_VERSION = "6"  # 2: the LLM only adds to the lexicon's reading; 3: long reports in chunks; 4: fixed batches;
# 5: whole batches queued before the first engine step, prompts read in one step; 6: the in-process engine's
# settings hashed (a server's version, which has none, must not equal the in-process engine's of version 5)


class LlmExtractor:
    """Knowledge from an LLM backend under one prompt; see the module docstring."""

    def __init__(
        self, backend: GenerationBackend, prompt: Prompt, vocabulary: Vocabulary, config: ExtractionConfig
    ) -> None:
        self.backend = backend
        self.prompt = prompt
        self.config = config
        self.batch_size = config.reports_per_part
        self.schema = KnowledgeSchema(vocabulary, config.max_mentions)
        self.lexicon = Lexicon(vocabulary)
        budget = PromptBudget(prompt, backend, config.max_prompt_tokens)
        self.strategy: Strategy = make_strategy(prompt.strategy, self.lexicon, self.schema, config, budget)
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
        return [
            self._outcome(r, report, *plan, state) for r, (report, plan) in enumerate(zip(reports, plans, strict=True))
        ]

    def _request(self, item: Item, attempt: int) -> GenerationRequest:
        sampling = self.config.sampling
        return GenerationRequest(
            messages=tuple(self.prompt.messages(item.variables)),
            constraint=self.strategy.request_constraint(item),
            max_tokens=self.strategy.max_tokens,
            temperature=sampling.temperature if attempt == 0 else sampling.retry_temperature,
            seed=sampling.seed + attempt,
        )

    def _outcome(
        self, index: int, report: PreparedReport, items: list[Item], notes: tuple[str, ...], state: _BatchState
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
        answered = self.schema.validate(self.strategy.assemble(report, items, answers))
        reading = self.lexicon.read(report.text)
        rules, dropped = knowledge_from_reading(reading, self.lexicon.vocabulary, self.schema.max_mentions)
        knowledge, deciders, beyond = add_only(rules, answered, report.text, self.schema.max_mentions)
        knowledge = self.schema.validate(knowledge)
        flags = mention_flags(knowledge, report.text, self.lexicon.vocabulary)
        return ExtractedReport(
            report,
            knowledge,
            flags,
            deciders,
            (*report.notes, *notes, *dropped, *beyond),
            _raw(items, answers),
            attempts,
            unmatched_statements(reading),
        )


def add_only(
    rules: ReportKnowledge, answered: ReportKnowledge, text: str, max_mentions: int
) -> tuple[ReportKnowledge, tuple[Decider, ...], tuple[str, ...]]:
    """The rules' knowledge with what the model adds: see the module docstring. Returns the
    knowledge, who decided each mention, and a note when the mention bound cut additions."""
    supported = {
        (m.entity_id, m.status)
        for m, flag in zip(answered.mentions, mention_flags(answered, text), strict=True)  # evidence only
        if flag is None
    }
    deciders: list[Decider] = [
        BOTH_DECIDED if (m.entity_id, m.status) in supported else LEXICON_DECIDED for m in rules.mentions
    ]
    known = {m.entity_id for m in rules.mentions}
    added = [m for m in answered.mentions if m.entity_id not in known]
    room = max(max_mentions - len(rules.mentions), 0)
    notes = (f"{len(added) - room} mentions the LLM added beyond {max_mentions} dropped",) if len(added) > room else ()
    mentions = (*rules.mentions, *added[:room])
    deciders += [LLM_DECIDED] * len(added[:room])
    rhythm = rules.rhythm or (answered.rhythm if (answered.rhythm, "present") in supported else None)
    return rules.model_copy(update={"mentions": mentions, "rhythm": rhythm}), tuple(deciders), notes


@dataclass(slots=True)
class _BatchState:
    answers: dict[tuple[int, int], Any] = field(default_factory=dict)
    failures: dict[tuple[int, int], tuple[Failure, str]] = field(default_factory=dict)
    tries: dict[tuple[int, int], int] = field(default_factory=dict)


def _raw(items: list[Item], answers: list[Any]) -> str:
    """The model's answers as they came, one line per request (a chunk, a candidate)."""
    return "\n".join(_raw_answer(item, answer) for item, answer in zip(items, answers, strict=True))


def _raw_answer(item: Item, answer: Any) -> str:
    if isinstance(answer, ReportKnowledge):
        return answer.model_dump_json()
    if isinstance(answer, dict):
        return json.dumps(answer)
    return f"{item.finding.entity_id if item.finding else '?'}={answer}"


def llm_provenance(
    prompt: Prompt, vocabulary: Vocabulary, schema: KnowledgeSchema, model_id: str, config: ExtractionConfig
) -> Provenance:
    """The prompt version: a hash of the template, examples, schema, vocabulary,
    model and sampling parameters, the strategy's own parameters and, for the
    in-process engine, the engine settings its answers depend on."""
    parameters: dict[str, object] = {
        "sampling": config.sampling.model_dump(),
        "max_mentions": config.max_mentions,
        "max_prompt_tokens": config.max_prompt_tokens,
        "context_chars": config.context_chars,
        "reports_per_part": config.reports_per_part,  # a batched engine's answers depend on their batch
    }
    if config.backend == "vllm":  # a server's settings are its own: its version names what it is asked
        parameters["engine"] = config.engine.answer_settings()
    version = stable_hash(
        "llm", LLM_LOGIC_VERSION, prompt, schema.version, vocabulary.content_hash, model_id, parameters
    )
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
