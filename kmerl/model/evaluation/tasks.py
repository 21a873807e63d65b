"""Downstream tasks: which records, which classes, and each class's name for prompts.

A class is positive for a record when any of the record's source labels is one
of the class's codes, so tasks are defined on cardiologist labels, never on the
extracted knowledge the model was trained with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from kmerl.sources import ChallengeSource, PtbXlSource, SourceConfig
from kmerl.sources.label_tables import read_dx_mapping, read_scp_statements

# PTB-XL's five diagnostic superclasses (Wagner et al. 2020), named for text prompts.
PTBXL_SUPERCLASSES: dict[str, str] = {
    "NORM": "normal ECG",
    "MI": "myocardial infarction",
    "STTC": "ST/T change",
    "CD": "conduction disturbance",
    "HYP": "hypertrophy",
}


class EvalClass(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str  # English name: the zero-shot prompt and the query network's query
    system: str  # label coding system: "scp", "snomed"
    codes: tuple[str, ...]


class EvalTask(BaseModel):
    """One downstream data set: its records (by source and split) and candidate classes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    source: str
    fit_splits: tuple[str, ...]  # what the linear probe trains on
    test_splits: tuple[str, ...]
    classes: tuple[EvalClass, ...]

    def label_matrix(self, labels: pl.Series) -> np.ndarray:
        """(records, classes) bool from a column of label lists (struct system, code)."""
        frame = (
            pl.DataFrame({"labels": labels})
            .with_row_index("row")
            .explode("labels", empty_as_null=False)
            .drop_nulls("labels")
            .unnest("labels")
        )
        matrix = np.zeros((len(labels), len(self.classes)), dtype=bool)
        for column, cls in enumerate(self.classes):
            rows = frame.filter((pl.col("system") == cls.system) & pl.col("code").is_in(cls.codes))["row"]
            matrix[rows.to_numpy(), column] = True
        return matrix


def ptbxl_superclass_task(scp_statements: Path, source: str = "ptbxl") -> EvalTask:
    """PTB-XL superclasses: folds 1-8 train the probe, fold 10 tests (fold 9 stays for validation)."""
    statements = read_scp_statements(scp_statements).filter(pl.col("diagnostic") == 1)
    classes = tuple(
        EvalClass(
            name=name,
            system="scp",
            codes=tuple(statements.filter(pl.col("diagnostic_class") == superclass)["code"].sort()),
        )
        for superclass, name in PTBXL_SUPERCLASSES.items()
    )
    return EvalTask(
        name=f"{source}_superclass", source=source, fit_splits=("train",), test_splits=("test",), classes=classes
    )


def challenge_task(dx_mapping_dir: Path, source: str = "cinc2021") -> EvalTask:
    """Challenge records by SNOMED CT diagnosis. Their splits are a hash of the record, so
    validation and test together form the test set (no model selection uses them)."""
    classes = tuple(
        EvalClass(name=name, system="snomed", codes=(code,))
        for code, name in read_dx_mapping(dx_mapping_dir).iter_rows()
    )
    return EvalTask(
        name=f"{source}_snomed", source=source, fit_splits=("train",), test_splits=("val", "test"), classes=classes
    )


def evaluable_sources(sources: Sequence[SourceConfig]) -> list[PtbXlSource | ChallengeSource]:
    """The sources an evaluation task is defined for (PTB-XL and Challenge archives)."""
    return [source for source in sources if isinstance(source, PtbXlSource | ChallengeSource)]


def task_sources_identity(sources: Sequence[SourceConfig]) -> list[dict[str, object]]:
    """What defines the tasks, without reading their label tables: for code versions."""
    return [source.model_dump(mode="json") for source in evaluable_sources(sources)]


def tasks_for_sources(sources: Sequence[SourceConfig]) -> list[EvalTask]:
    """The evaluation tasks of the configured sources; reads their label tables."""
    return [
        ptbxl_superclass_task(source.scp_statements_file, source.name)
        if isinstance(source, PtbXlSource)
        else challenge_task(source.mapping_dir, source.name)
        for source in evaluable_sources(sources)
    ]
