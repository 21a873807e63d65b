"""Which kinds of mention count as findings, fitted on a development split.

A report can state what its reader did not confirm: an unconfirmed machine reading
lists a supraventricular extrasystole the cardiologist did not code, a hedged
"ischemia possible" is coded far less often than it is written. Measured on PTB-XL's
development folds, such kinds of mention — an entity with a status, in a machine
report or not — are contradicted by the labels most of the time. A mention of a kind
whose development precision is below half the lexicon's micro F1 there lowers F1
wherever it is asserted (asserting a mention of precision p raises F1 exactly when
p > F1 / 2), so the vocabulary withholds such kinds: their mentions stay in the
report's knowledge, flagged, and are no entity. Kinds seen fewer than
``min_mentions`` times are left alone, so no rule rests on a handful of rows.

Fitted on the development split only; the validation split measures the result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from kmerl.atomic import write_text_atomic
from kmerl.extraction.lexicon import Lexicon, knowledge_from_reading
from kmerl.extraction.quality import BootstrapConfig, label_entities, score_extraction, widen
from kmerl.extraction.schema import ASSERTED
from kmerl.extraction.text import fold, prepare_report
from kmerl.extraction.vocabulary import Vocabulary, WithheldContext

KIND = ("entity_id", "status", "machine_report")
_EVERY_MENTION = 1_000  # no mention bound: every kind is counted


class CalibrationError(ValueError):
    """Nothing to fit on: no labelled records in the development split."""


class CalibrationConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_mentions: int = Field(15, gt=0, description="A kind of mention seen fewer times on development is kept.")
    split: str = Field("development", description="The records' split the contexts are fitted on.")


def kind_precision(records: pl.DataFrame, vocabulary: Vocabulary) -> tuple[pl.DataFrame, float]:
    """Per kind of asserted mention of an entity PTB-XL codes name (:data:`KIND`): how many
    there are and the share the labels confirm, over the labelled ``records`` (``record_id,
    report, labels``); and the micro F1 with every kind asserted."""
    unwithheld = vocabulary.model_copy(update={"withheld": ()})
    lexicon = Lexicon(unwithheld)
    rows = []
    for record_id, raw in records.select("record_id", "report").iter_rows():
        text = prepare_report(raw).text
        knowledge, _ = knowledge_from_reading(lexicon.read(text), unwithheld, _EVERY_MENTION)
        machine_report = unwithheld.is_machine_report(fold(text).folded)
        rows += [(record_id, m.entity_id, m.status, machine_report) for m in knowledge.mentions if m.status in ASSERTED]
    mentions = pl.DataFrame(
        rows,
        schema={"record_id": pl.String, "entity_id": pl.String, "status": pl.String, "machine_report": pl.Boolean},
        orient="row",
    ).unique()
    scored = [e.entity_id for e in unwithheld.entities if e.codes.scp]
    truth = widen(label_entities(records, unwithheld, "scp"), unwithheld).filter(pl.col("entity_id").is_in(scored))
    labelled = truth.select("record_id").unique()
    mentions = mentions.join(labelled, on="record_id")
    confirmed = mentions.filter(pl.col("entity_id").is_in(scored)).join(
        truth.with_columns(confirmed=pl.lit(True)), on=["record_id", "entity_id"], how="left"
    )
    kinds = (
        confirmed.group_by(KIND)
        .agg(mentions=pl.len(), precision=pl.col("confirmed").fill_null(False).mean())
        .sort(KIND)
    )
    # Every kind asserted, scored as the quality report scores (one record, one "report").
    asserted = mentions.select(pl.col("record_id").alias("report_key"), "entity_id", "status")
    report = score_extraction(
        "lexicon", "calibration", records.with_columns(report_key=pl.col("record_id")), asserted, unwithheld,
        bootstrap=BootstrapConfig(resamples=1),
    )  # fmt: skip
    return kinds, float(report.summary["micro_f1"])


def fit_withheld(records: pl.DataFrame, vocabulary: Vocabulary, config: CalibrationConfig) -> list[WithheldContext]:
    """The kinds of mention to withhold: seen at least ``min_mentions`` times on the
    ``config.split`` records, confirmed by their labels less than half the micro F1."""
    development = records.filter(pl.col("split") == config.split)
    if label_entities(development, vocabulary, "scp").is_empty():
        raise CalibrationError(
            f"no {config.split!r} records with SCP labels to fit on ({records.height} records in all): calibration "
            "needs a development split (PTB-XL folds 1-7, or a report table's split_column)"
        )
    kinds, f1 = kind_precision(development, vocabulary)
    withheld = kinds.filter((pl.col("mentions") >= config.min_mentions) & (pl.col("precision") < f1 / 2))
    return [WithheldContext(**row) for row in withheld.iter_rows(named=True)]


def write_withheld(path: Path, contexts: Iterable[WithheldContext]) -> None:
    """Replace the vocabulary file's ``withheld`` section (atomically; the rest is kept as it is)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    document["withheld"] = [context.model_dump() | {"precision": round(context.precision, 3)} for context in contexts]
    write_text_atomic(path, json.dumps(document, indent=1, ensure_ascii=False) + "\n")
