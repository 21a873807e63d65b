"""Which kinds of mention count as findings, fitted on a development split.

A report can state what its reader did not confirm: an unconfirmed machine reading
lists a supraventricular extrasystole the cardiologist did not code, a hedged
"ischemia possible" is coded far less often than it is written. Measured on PTB-XL's
development folds, such kinds of mention — an entity with a status, in a machine
report or not — are contradicted by the labels most of the time. A mention of a kind
whose development precision is below half the lexicon's micro F1 there lowers F1
wherever it is asserted (asserting a mention of precision p raises F1 exactly when
p > F1 / 2), so the vocabulary withholds such kinds: their mentions stay in the
report's knowledge, flagged, and are no entity. A finding can also be coded far less
often in one way of writing it than in the others (German reports' "st-senkung" is
seldom coded as ST depression, the finding as a whole mostly is), so a second
pass fits kinds written with one term among the mentions the first pass leaves. Kinds
seen fewer than ``min_mentions`` times are left alone, so no rule rests on a handful
of rows.

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
from kmerl.extraction.text import fold, fold_term, prepare_report
from kmerl.extraction.vocabulary import Vocabulary, WithheldContext

KIND = ("entity_id", "status", "machine_report")
TERM_KIND = (*KIND, "term")
_EVERY_MENTION = 1_000  # no mention bound: every kind is counted


class CalibrationError(ValueError):
    """Nothing to fit on: no labelled records in the development split."""


class CalibrationConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_mentions: int = Field(15, gt=0, description="A kind of mention seen fewer times on development is kept.")
    split: str = Field("development", description="The records' split the contexts are fitted on.")


def labelled_mentions(records: pl.DataFrame, vocabulary: Vocabulary) -> tuple[pl.DataFrame, float]:
    """Every asserted mention of an entity PTB-XL codes name, over the labelled ``records``
    (``record_id, report, labels``): its kind (:data:`TERM_KIND`) and whether the labels
    confirm it; and the micro F1 with every mention asserted."""
    unwithheld = vocabulary.model_copy(update={"withheld": ()})
    lexicon = Lexicon(unwithheld)
    rows = []
    for record_id, raw in records.select("record_id", "report").iter_rows():
        text = prepare_report(raw).text
        knowledge, _ = knowledge_from_reading(lexicon.read(text), unwithheld, _EVERY_MENTION)
        machine_report = unwithheld.is_machine_report(fold(text).folded)
        rows += [
            (record_id, m.entity_id, m.status, machine_report, fold_term(m.evidence))
            for m in knowledge.mentions
            if m.status in ASSERTED
        ]
    mentions = pl.DataFrame(
        rows,
        schema={
            "record_id": pl.String, "entity_id": pl.String, "status": pl.String, "machine_report": pl.Boolean,
            "term": pl.String,
        },
        orient="row",
    ).unique()  # fmt: skip
    scored = [e.entity_id for e in unwithheld.entities if e.codes.scp]
    truth = widen(label_entities(records, unwithheld, "scp"), unwithheld).filter(pl.col("entity_id").is_in(scored))
    labelled = truth.select("record_id").unique()
    mentions = mentions.join(labelled, on="record_id")
    # Every kind asserted, scored as the quality report scores (one record, one "report").
    asserted = mentions.select(pl.col("record_id").alias("report_key"), "entity_id", "status")
    report = score_extraction(
        "lexicon", "calibration", records.with_columns(report_key=pl.col("record_id")), asserted, unwithheld,
        bootstrap=BootstrapConfig(resamples=1),
    )  # fmt: skip
    confirmed = (
        mentions.filter(pl.col("entity_id").is_in(scored))
        .join(truth.with_columns(confirmed=pl.lit(True)), on=["record_id", "entity_id"], how="left")
        .with_columns(pl.col("confirmed").fill_null(False))
    )
    return confirmed, float(report.summary["micro_f1"])


def fit_withheld(records: pl.DataFrame, vocabulary: Vocabulary, config: CalibrationConfig) -> list[WithheldContext]:
    """The kinds of mention to withhold, fitted on the ``config.split`` records: first kinds
    (:data:`KIND`), then, among the mentions those leave, kinds written with one term
    (:data:`TERM_KIND`): each seen at least ``min_mentions`` times and confirmed by the
    labels less than half the micro F1."""
    development = records.filter(pl.col("split") == config.split)
    if label_entities(development, vocabulary, "scp").is_empty():
        raise CalibrationError(
            f"no {config.split!r} records with SCP labels to fit on ({records.height} records in all): calibration "
            "needs a development split (PTB-XL folds 1-7, or a report table's split_column)"
        )
    mentions, f1 = labelled_mentions(development, vocabulary)
    kinds = _contradicted(mentions, KIND, config.min_mentions, f1 / 2)
    terms = _contradicted(mentions.join(kinds, on=KIND, how="anti"), TERM_KIND, config.min_mentions, f1 / 2)
    return [WithheldContext(**row) for frame in (kinds, terms) for row in frame.iter_rows(named=True)]


def _contradicted(mentions: pl.DataFrame, kind: tuple[str, ...], min_mentions: int, limit: float) -> pl.DataFrame:
    """The kinds seen at least ``min_mentions`` times and confirmed less often than ``limit``."""
    return (
        mentions.group_by(kind)
        .agg(mentions=pl.len(), precision=pl.col("confirmed").mean())
        .filter((pl.col("mentions") >= min_mentions) & (pl.col("precision") < limit))
        .sort(kind)
    )


def write_withheld(path: Path, contexts: Iterable[WithheldContext]) -> None:
    """Replace the vocabulary file's ``withheld`` section (atomically; the rest is kept as it is)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    document["withheld"] = [
        context.model_dump(exclude_none=True) | {"precision": round(context.precision, 3)} for context in contexts
    ]
    write_text_atomic(path, json.dumps(document, indent=1, ensure_ascii=False) + "\n")
