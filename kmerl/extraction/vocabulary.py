"""The canonical cardiac entities: a versioned data file, validated when loaded.

Seeded from PTB-XL's 71 SCP-ECG statements and the CinC 2021 SNOMED CT mapping,
merged where both name the same finding. Extraction, the quality report and the
model stage (entity-name embeddings, multi-hot targets) all read it from here.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kmerl.extraction.terms import term_keys
from kmerl.extraction.text import fold_term
from kmerl.hashing import stable_hash

DEFAULT_VOCABULARY = Path(__file__).resolve().parent / "data" / "vocabulary.json"

Category = Literal[
    "normal", "rhythm", "ectopy", "conduction", "axis", "infarction", "ischemia", "st_t", "hypertrophy", "morphology", "other"
]  # fmt: skip
Language = Literal["en", "de", "sv"]
HeartAxis = Literal["normal", "left", "right", "indeterminate"]
CodeSystem = Literal["scp", "snomed"]


class VocabularyError(ValueError):
    pass


class Codes(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    scp: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()


class Entity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    entity_id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    name: str = Field(min_length=1, description="English name; the model stage embeds it.")
    category: Category
    codes: Codes
    abbreviations: tuple[str, ...] = ()
    broader: str | None = Field(None, description="A more general entity this one implies.")
    synonyms: dict[Language, tuple[str, ...]] = Field(default_factory=dict)

    @property
    def terms(self) -> tuple[str, ...]:
        """Every way of writing it that the lexicon matches: the name and all synonyms."""
        return (self.name, *(term for terms in self.synonyms.values() for term in terms))


class WithheldContext(BaseModel):
    """A kind of mention a development split's labels contradict: it stays in the report's
    knowledge, flagged, and is no entity (fitted by ``kmerl calibrate``). With a ``term``,
    only mentions whose evidence is that term (folded) are of the kind: one way of writing
    a finding can be coded far less often than the others."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entity_id: str
    status: Literal["present", "uncertain"]
    machine_report: bool = Field(description="In a report that marks itself as an unconfirmed machine reading.")
    mentions: int = Field(ge=0, description="Such mentions on the development split.")
    precision: float = Field(ge=0, le=1, description="The share of them the labels confirm there.")
    term: str | None = Field(None, description="The evidence, folded, that makes a mention this kind; none: any.")


class Vocabulary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    description: str
    sources: dict[str, str]
    heart_axis_terms: dict[HeartAxis, tuple[str, ...]]
    non_findings: tuple[str, ...] = Field(
        (), description="Phrases that name no finding (report status lines, device notes): never a vocabulary gap."
    )
    entities: tuple[Entity, ...] = Field(min_length=1)
    machine_report_markers: tuple[str, ...] = Field(
        (), description="Phrases by which a report marks itself as an unconfirmed machine reading."
    )
    withheld: tuple[WithheldContext, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Vocabulary:
        ids = [entity.entity_id for entity in self.entities]
        _no_repeats(ids, "entity ids")
        if unknown := sorted({c.entity_id for c in self.withheld} - set(ids)):
            raise ValueError(f"withheld contexts name entities not in the vocabulary: {unknown}")
        for system in ("scp", "snomed"):
            _no_repeats(
                [c for e in self.entities for c in getattr(e.codes, system)], f"{system} codes (one entity per code)"
            )
        known = set(ids)
        for entity in self.entities:
            if entity.broader is not None and entity.broader not in known:
                raise ValueError(f"{entity.entity_id}: broader entity {entity.broader!r} is not in the vocabulary")
        for entity in self.entities:
            seen = {entity.entity_id}
            parent = entity.broader
            while parent is not None:
                if parent in seen:
                    raise ValueError(f"{entity.entity_id}: 'broader' links form a cycle through {parent!r}")
                seen.add(parent)
                parent = self.entity(parent).broader
        owners: dict[str, set[str]] = {}
        for entity in self.entities:
            for term in entity.terms:
                for key in term_keys(term):
                    owners.setdefault(key, set()).add(entity.entity_id)
        if ambiguous := {term: sorted(o) for term, o in owners.items() if len(o) > 1}:
            raise ValueError(f"terms shared by several entities (the lexicon could not decide): {ambiguous}")
        axis_owner = [term_keys(t)[0] for terms in self.heart_axis_terms.values() for t in terms]
        _no_repeats(axis_owner, "heart axis terms")
        return self

    @cached_property
    def content_hash(self) -> str:
        """Changes whenever anything in the file changes: part of every prompt version."""
        return stable_hash("vocabulary", self, length=8)

    @cached_property
    def ids(self) -> tuple[str, ...]:
        return tuple(entity.entity_id for entity in self.entities)

    @cached_property
    def _by_id(self) -> dict[str, Entity]:
        return {entity.entity_id: entity for entity in self.entities}

    @cached_property
    def _by_code(self) -> dict[tuple[str, str], str]:
        return {
            (system, code): entity.entity_id
            for entity in self.entities
            for system in ("scp", "snomed")
            for code in getattr(entity.codes, system)
        }

    def entity(self, entity_id: str) -> Entity:
        try:
            return self._by_id[entity_id]
        except KeyError:
            raise KeyError(f"{entity_id!r} is not in vocabulary {self.version}") from None

    def is_machine_report(self, folded_text: str) -> bool:
        """Whether a report (folded, :func:`~kmerl.extraction.text.fold`) marks itself as a machine reading."""
        return any(marker in folded_text for marker in self._folded_markers)

    def withholds(self, entity_id: str, status: str, machine_report: bool, evidence: str | None = None) -> bool:
        """Whether a mention of this kind (``evidence`` as the report writes it) is withheld."""
        kind = (entity_id, status, machine_report)
        return (*kind, None) in self._withheld or (
            evidence is not None and (*kind, fold_term(evidence)) in self._withheld
        )

    @cached_property
    def _folded_markers(self) -> tuple[str, ...]:
        return tuple(fold_term(marker) for marker in self.machine_report_markers)

    @cached_property
    def _withheld(self) -> frozenset[tuple[str, str, bool, str | None]]:
        return frozenset((c.entity_id, c.status, c.machine_report, c.term) for c in self.withheld)

    def entity_for_code(self, system: str, code: str) -> str | None:
        """The entity a source label (``scp``/``snomed`` code) stands for, if any."""
        return self._by_code.get((system, code))

    def ancestors(self, entity_id: str) -> tuple[str, ...]:
        """The chain of broader entities, nearest first."""
        chain = []
        parent = self.entity(entity_id).broader
        while parent is not None:
            chain.append(parent)
            parent = self.entity(parent).broader
        return tuple(chain)

    def ids_in(self, category: Category) -> tuple[str, ...]:
        return tuple(e.entity_id for e in self.entities if e.category == category)

    def frame(self) -> pl.DataFrame:
        """One row per entity: what the model stage embeds and builds multi-hot vectors from."""
        rows = [
            {
                "entity_id": e.entity_id,
                "name": e.name,
                "category": e.category,
                "broader": e.broader,
                "scp_codes": list(e.codes.scp),
                "snomed_codes": list(e.codes.snomed),
                "abbreviations": list(e.abbreviations),
                "synonyms": [t for terms in e.synonyms.values() for t in terms],
                **{f"synonyms_{lang}": list(e.synonyms.get(lang, ())) for lang in ("en", "de", "sv")},
            }
            for e in self.entities
        ]
        return pl.DataFrame(rows, schema=VOCABULARY_FRAME_SCHEMA)


VOCABULARY_FRAME_SCHEMA = pl.Schema(
    {
        "entity_id": pl.String,
        "name": pl.String,
        "category": pl.String,
        "broader": pl.String,
        "scp_codes": pl.List(pl.String),
        "snomed_codes": pl.List(pl.String),
        "abbreviations": pl.List(pl.String),
        "synonyms": pl.List(pl.String),
        "synonyms_en": pl.List(pl.String),
        "synonyms_de": pl.List(pl.String),
        "synonyms_sv": pl.List(pl.String),
    }
)


def _no_repeats(values: list[str], what: str) -> None:
    if repeated := sorted(value for value, count in Counter(values).items() if count > 1):
        raise ValueError(f"repeated {what}: {repeated}")


def load_vocabulary(path: Path | None = None) -> Vocabulary:
    """Read and validate a vocabulary file (the bundled one by default)."""
    path = path or DEFAULT_VOCABULARY
    try:
        return Vocabulary.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, ValidationError) as error:
        raise VocabularyError(f"vocabulary {path}: {error}") from error
