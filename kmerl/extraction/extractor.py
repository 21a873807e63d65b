"""The extractor interface, what it returns per report, and the lexicon baseline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from kmerl.extraction.gaps import unmatched_statements
from kmerl.extraction.generation import GenerationStats
from kmerl.extraction.lexicon import Lexicon, knowledge_from_reading
from kmerl.extraction.schema import EMPTY_KNOWLEDGE, SCHEMA_VERSION, KnowledgeSchema, ReportKnowledge
from kmerl.extraction.text import PreparedReport
from kmerl.extraction.validation import MentionFlag, QuarantineReason, mention_flags
from kmerl.extraction.vocabulary import Vocabulary
from kmerl.hashing import stable_hash

# Bump when a code change alters what the lexicon extracts from the same text.
LEXICON_LOGIC_VERSION = "1"
EMPTY_REPORT_NOTE = "empty report: nothing to extract"

ExtractorKind = Literal["lexicon", "llm"]


class Provenance(BaseModel):
    """Everything that determines an extractor's output; its hash names the knowledge version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    extractor: ExtractorKind
    prompt_version: str  # the hash of everything below (the lexicon's: logic version + vocabulary + schema)
    prompt_name: str | None
    strategy: str
    model: str | None
    schema_version: str
    vocabulary_version: str
    parameters: dict[str, object]

    @property
    def knowledge_version(self) -> str:
        return f"{self.extractor}-{self.prompt_version}"


Decider = Literal["lexicon", "llm", "both"]
LEXICON_DECIDED: Decider = "lexicon"
LLM_DECIDED: Decider = "llm"
BOTH_DECIDED: Decider = "both"


@dataclass(frozen=True, slots=True)
class ExtractedReport:
    report: PreparedReport
    knowledge: ReportKnowledge
    flags: tuple[MentionFlag | None, ...]  # one per mention
    decided_by: tuple[Decider, ...]  # one per mention: which component put it there
    notes: tuple[str, ...] = ()
    raw_output: str | None = None
    attempts: int = 0
    unmatched: tuple[str, ...] = ()  # statements no vocabulary term covers (gap keys, see kmerl.extraction.gaps)


@dataclass(frozen=True, slots=True)
class QuarantinedReport:
    report: PreparedReport
    reason: QuarantineReason
    detail: str
    raw_output: str
    attempts: int


ReportOutcome = ExtractedReport | QuarantinedReport


class Extractor(Protocol):
    """Turns distinct reports into knowledge; the backend and model are configuration."""

    provenance: Provenance
    batch_size: int  # reports per batch and stored part: the unit of restart

    @property
    def stats(self) -> GenerationStats: ...

    def extract(self, reports: Sequence[PreparedReport]) -> list[ReportOutcome]: ...


def empty_report(report: PreparedReport) -> ExtractedReport:
    return ExtractedReport(report, EMPTY_KNOWLEDGE, (), (), (*report.notes, EMPTY_REPORT_NOTE))


class LexiconExtractor:
    """The deterministic baseline: synonyms, negation and uncertainty cues."""

    def __init__(self, vocabulary: Vocabulary, max_mentions: int, batch_size: int = 512) -> None:
        self.lexicon = Lexicon(vocabulary)
        self.batch_size = batch_size  # reads each report alone: not part of the version
        self.schema = KnowledgeSchema(vocabulary, max_mentions)
        self.stats = GenerationStats()  # stays zero: the lexicon calls no model
        parameters: dict[str, object] = {"max_mentions": max_mentions}
        self.provenance = Provenance(
            extractor="lexicon",
            prompt_version=stable_hash(
                "lexicon", LEXICON_LOGIC_VERSION, vocabulary.content_hash, self.schema.version, parameters
            ),
            prompt_name=None,
            strategy="lexicon",
            model=None,
            schema_version=f"{SCHEMA_VERSION}/{self.schema.version}",
            vocabulary_version=f"{vocabulary.version}/{vocabulary.content_hash}",
            parameters=parameters,
        )

    def extract(self, reports: Sequence[PreparedReport]) -> list[ReportOutcome]:
        return [self._one(report) for report in reports]

    def _one(self, report: PreparedReport) -> ExtractedReport:
        if report.is_blank:
            return empty_report(report)
        reading = self.lexicon.read(report.text)
        knowledge, notes = knowledge_from_reading(reading, self.lexicon.vocabulary, self.schema.max_mentions)
        knowledge = self.schema.validate(knowledge)
        return ExtractedReport(
            report,
            knowledge,
            mention_flags(knowledge, report.text, self.lexicon.vocabulary),
            (LEXICON_DECIDED,) * len(knowledge.mentions),
            (*report.notes, *notes),
            unmatched=unmatched_statements(reading),
        )
