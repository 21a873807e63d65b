"""What extraction produces for one report, as pydantic models.

The entity ids are an enum drawn from the vocabulary, so the models are built
per vocabulary (:class:`KnowledgeSchema`); the same JSON schema constrains the
LLM's decoding and validates every output afterwards.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, create_model

from kmerl.extraction.vocabulary import HeartAxis, Vocabulary
from kmerl.hashing import stable_hash
from kmerl.leads import STANDARD_LEADS

# Bump when the meaning or shape of the models below changes.
SCHEMA_VERSION = "1"

Status = Literal["present", "absent", "uncertain"]
STATUSES: tuple[str, ...] = ("present", "absent", "uncertain")
# What it means for a report to assert an entity, everywhere: the quality report scores
# it, the feature store's multi-hot targets hold it, the audit views filter on it.
ASSERTED: tuple[Status, ...] = ("present", "uncertain")
ReportLanguage = Literal["de", "en", "sv", "mixed", "unknown"]
Lead = Literal[STANDARD_LEADS]  # type: ignore[valid-type]
MAX_EVIDENCE_CHARS = 160


class Mention(BaseModel):
    """One entity the report speaks about, and what it says about it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entity_id: str
    status: Status
    leads: tuple[Lead, ...] = Field((), max_length=len(STANDARD_LEADS))
    evidence: str = Field(max_length=MAX_EVIDENCE_CHARS, description="The words of the report that say it, copied.")


class ReportKnowledge(BaseModel):
    """Structured knowledge of one report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: ReportLanguage
    rhythm: str | None = Field(None, description="Entity id of the rhythm the report states.")
    heart_axis: HeartAxis | None = None
    mentions: tuple[Mention, ...] = ()


EMPTY_KNOWLEDGE = ReportKnowledge(language="unknown")


class KnowledgeSchema:
    """:class:`ReportKnowledge` with entity ids restricted to one vocabulary.

    ``max_mentions`` bounds the list: with a free-length list a small model
    repeats one item until it runs out of tokens.
    """

    def __init__(self, vocabulary: Vocabulary, max_mentions: int) -> None:
        self.vocabulary = vocabulary
        self.max_mentions = max_mentions
        # Types built at run time from the vocabulary: a type checker sees them as Any.
        entity_id = cast(Any, Literal)[tuple(vocabulary.ids)]
        rhythm_id = cast(Any, Literal)[tuple(vocabulary.ids_in("rhythm"))]
        self.mention_model: type[Mention] = create_model("Mention", __base__=Mention, entity_id=(entity_id, ...))
        mentions = cast(Any, tuple)[self.mention_model, ...]
        self.report_model: type[ReportKnowledge] = create_model(
            "ReportKnowledge",
            __base__=ReportKnowledge,
            rhythm=(rhythm_id | None, None),
            mentions=(mentions, Field((), max_length=max_mentions)),
        )

    @cached_property
    def json_schema(self) -> dict[str, Any]:
        return self.report_model.model_json_schema()

    @cached_property
    def version(self) -> str:
        return stable_hash("schema", SCHEMA_VERSION, self.json_schema, length=8)

    def validate_json(self, raw: str) -> ReportKnowledge:
        return self.report_model.model_validate_json(raw)

    def validate(self, knowledge: ReportKnowledge) -> ReportKnowledge:
        return self.report_model.model_validate(knowledge.model_dump())
