"""How much the report text can add to the lexicon at all, measured with a model that
learns from the labels: the reference the LLM path's target (lexicon + 0.02 micro F1,
adding only) has to be read against.

For each entity PTB-XL codes, a logistic regression on character n-grams of the
report (TF-IDF, scikit-learn) is fitted on the development split's labels: 4,288
reports, folds 1-7 of ``ptbxl-reports`` and of the sample. Its thresholds are chosen
by 5-fold cross-fitting on development only, then the validation split (fold 8 of the
reports; with the sample's folds 8-10) is scored three ways with the quality report's
scorer: the lexicon; the lexicon plus what the classifier asserts (it may only add,
as the LLM path may); and the classifier also allowed to withdraw lexicon mentions it
finds unlikely. Every row has its bootstrap interval and its paired difference to the
lexicon.

    python -m bench.extraction_ceiling [--bootstrap 1000]

A supervised model sees what no extractor of the text may: which wordings the
cardiologists coded. Its gain bounds what reading the text better can add, not what
a product should assert (its additions carry no evidence in the report).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from kmerl.corpora import PtbXlReports, read_corpus
from kmerl.extraction import load_vocabulary
from kmerl.extraction.lexicon import Lexicon, knowledge_from_reading
from kmerl.extraction.quality import (
    BootstrapConfig,
    label_entities,
    paired_difference,
    score_extraction,
    widen,
)
from kmerl.extraction.schema import ASSERTED
from kmerl.extraction.text import fold, prepare_report
from kmerl.extraction.validation import mention_flags
from kmerl.extraction.vocabulary import Vocabulary

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ADD_THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8)
WITHDRAW_THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
MIN_POSITIVES = 5  # an entity with fewer development labels gets no classifier


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args(argv)
    vocabulary = load_vocabulary()
    corpora = [
        PtbXlReports(name="ptbxl_reports", path=SHARED_DATA / "ptbxl-reports"),
        PtbXlReports(name="ptbxl_sample", path=SHARED_DATA / "ptbxl" / "ptbxl_database.csv"),
    ]
    records = pl.concat(
        [read_corpus(corpus).records.with_columns(corpus=pl.lit(corpus.name)) for corpus in corpora]
    ).with_columns(report_key=pl.col("record_id"))
    scored = [e.entity_id for e in vocabulary.entities if e.codes.scp]
    lexicon = _lexicon_matrix(records, vocabulary, scored)
    labels = _label_matrix(records, vocabulary, scored)
    texts = [fold(prepare_report(text).text).folded for text in records["report"]]
    features = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True).fit_transform(texts)
    development = np.flatnonzero((records["split"] == "development").to_numpy() & labels.any(axis=1))
    cross_fitted = np.zeros(labels.shape)
    for train, held_out in KFold(5, shuffle=True, random_state=0).split(development):
        cross_fitted[development[held_out]] = _fit_predict(features, labels, development[train], development[held_out])
    add, withdraw = _thresholds(cross_fitted[development], lexicon[development], labels[development])
    probability = _fit_predict(features, labels, development, np.arange(records.height))
    print(f"thresholds fitted on development (5-fold): add at p >= {add}, withdraw below p < {withdraw}\n")
    variants = {
        "lexicon": lexicon,
        "lexicon + classifier, adding only": lexicon | (probability >= add),
        "lexicon + classifier, adding and withdrawing": (lexicon & (probability >= withdraw)) | (probability >= add),
    }
    bootstrap = BootstrapConfig(resamples=args.bootstrap)
    print("| split | records | variant | micro P / R | micro F1 [95% CI] | paired difference to the lexicon [95% CI] |")
    print("|---|---:|---|---:|---|---|")
    fold8 = (pl.col("split") == "validation") & (pl.col("fold") == 8) & (pl.col("corpus") == "ptbxl_reports")
    for split, rows in (
        ("validation, fold 8 of the reports", fold8),
        ("validation, fold 8 + the sample's folds 8-10", pl.col("split") == "validation"),
    ):
        subset = records.with_row_index("position").filter(rows)
        reports = {
            name: score_extraction(
                name, "ceiling", subset, _entities(subset, matrix, scored), vocabulary, bootstrap=bootstrap
            )
            for name, matrix in variants.items()
        }
        for name, report in reports.items():
            s = report.summary
            difference = paired_difference(reports["lexicon"], report, bootstrap) if name != "lexicon" else None
            paired = (
                f"{difference['delta_micro_f1']:+.3f} [{difference['low']:+.3f}, {difference['high']:+.3f}]"
                if difference
                else "—"
            )
            print(
                f"| {split} | {s['records']:,} | {name} | {s['micro_precision']:.3f} / {s['micro_recall']:.3f} "
                f"| {s['micro_f1']:.3f} [{s['micro_f1_low']:.3f}, {s['micro_f1_high']:.3f}] | {paired} |"
            )
    return 0


def _lexicon_matrix(records: pl.DataFrame, vocabulary: Vocabulary, scored: list[str]) -> np.ndarray:
    """Records x scored entities: what the lexicon asserts (withheld kinds left out), widened
    to broader entities as the scorer credits them."""
    lexicon = Lexicon(vocabulary)
    rows = []
    for record_id, raw in records.select("record_id", "report").iter_rows():
        text = prepare_report(raw).text
        knowledge, _ = knowledge_from_reading(lexicon.read(text), vocabulary, len(vocabulary.entities))
        flags = mention_flags(knowledge, text, vocabulary)
        rows += [
            (record_id, m.entity_id) for m, flag in zip(knowledge.mentions, flags, strict=True)
            if flag is None and m.status in ASSERTED
        ]  # fmt: skip
    pairs = pl.DataFrame(rows, schema={"record_id": pl.String, "entity_id": pl.String}, orient="row")
    return _matrix(records, widen(pairs, vocabulary), scored)


def _label_matrix(records: pl.DataFrame, vocabulary: Vocabulary, scored: list[str]) -> np.ndarray:
    return _matrix(records, widen(label_entities(records, vocabulary, "scp"), vocabulary), scored)


def _matrix(records: pl.DataFrame, pairs: pl.DataFrame, scored: list[str]) -> np.ndarray:
    position = {record_id: i for i, record_id in enumerate(records["record_id"])}
    column = {entity_id: j for j, entity_id in enumerate(scored)}
    matrix = np.zeros((records.height, len(scored)), dtype=bool)
    for record_id, entity_id in pairs.iter_rows():
        if entity_id in column:
            matrix[position[record_id], column[entity_id]] = True
    return matrix


def _fit_predict(features: csr_matrix, labels: np.ndarray, train: np.ndarray, predict: np.ndarray) -> np.ndarray:
    """Per entity, P(label | report) for the ``predict`` rows, fitted on the ``train`` rows."""
    probability = np.zeros((len(predict), labels.shape[1]))
    for j in range(labels.shape[1]):
        if labels[train, j].sum() >= MIN_POSITIVES:
            model = LogisticRegression(C=10, max_iter=2000).fit(features[train], labels[train, j])
            probability[:, j] = model.predict_proba(features[predict])[:, 1]
    return probability


def _thresholds(probability: np.ndarray, lexicon: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The add threshold that maximises development micro F1 when only adding, then the
    withdraw threshold that maximises it beside that."""
    add = max(ADD_THRESHOLDS, key=lambda t: _micro_f1(lexicon | (probability >= t), labels))
    withdraw = max(
        WITHDRAW_THRESHOLDS,
        key=lambda r: _micro_f1((lexicon & (probability >= r)) | (probability >= add), labels),
    )
    return add, withdraw


def _micro_f1(predicted: np.ndarray, labels: np.ndarray) -> float:
    return float(2 * (predicted & labels).sum() / (predicted.sum() + labels.sum()))


def _entities(subset: pl.DataFrame, matrix: np.ndarray, scored: list[str]) -> pl.DataFrame:
    """The asserted pairs of ``subset`` (with its ``position`` in the full matrix) as the
    scorer reads extracted entities."""
    return pl.DataFrame(
        list(_pairs(subset, matrix, scored)),
        schema={"report_key": pl.String, "entity_id": pl.String, "status": pl.String},
        orient="row",
    )


def _pairs(subset: pl.DataFrame, matrix: np.ndarray, scored: list[str]) -> Iterator[tuple[str, str, str]]:
    for position, report_key in subset.select("position", "report_key").iter_rows():
        for j in np.flatnonzero(matrix[position]):
            yield report_key, scored[j], "present"


if __name__ == "__main__":
    raise SystemExit(main())
