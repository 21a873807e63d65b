"""Kinds of mention a development split's labels contradict: fitted there, withheld
(flagged, never an entity), and written into the vocabulary file."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from kmerl.extraction import KnowledgeStore, LexiconExtractor, extract_reports, load_vocabulary, report_key
from kmerl.extraction.calibration import CalibrationConfig, CalibrationError, fit_withheld, write_withheld
from kmerl.extraction.text import prepare_report
from kmerl.extraction.validation import MentionFlag
from kmerl.extraction.vocabulary import DEFAULT_VOCABULARY

VOCABULARY = load_vocabulary()
MACHINE = "unbestätigter bericht"


def _records(rows: list[tuple[str, list[str], str]]) -> pl.DataFrame:
    """``(report, scp codes, split)`` rows as corpus records."""
    return pl.DataFrame(
        {
            "record_id": [f"c/{i}" for i in range(len(rows))],
            "report": [report for report, _, _ in rows],
            "labels": [[{"system": "scp", "code": c, "score": 100.0} for c in codes] for _, codes, _ in rows],
            "split": [split for _, _, split in rows],
        }
    )


def _corpus() -> pl.DataFrame:
    return _records(
        # ST elevation written in machine reports, never coded: contradicted 20 times of 20.
        [(f"sinus rhythm. st elevation. {MACHINE}", ["SR"], "development")] * 20
        # The same statement in confirmed reports, always coded: kept.
        + [("sinus rhythm. st elevation.", ["SR", "STE_"], "development")] * 20
        # Left atrial enlargement contradicted too, but only 5 times: too few to fit a rule on.
        + [("sinus rhythm. left atrial enlargement.", ["SR"], "development")] * 5
        # Validation records contradict the confirmed kind: never looked at.
        + [("sinus rhythm. st elevation.", ["SR"], "validation")] * 40
    )


def test_a_kind_the_development_labels_contradict_is_withheld_and_nothing_else() -> None:
    withheld = fit_withheld(_corpus(), VOCABULARY, CalibrationConfig(min_mentions=15))
    assert [(c.entity_id, c.status, c.machine_report, c.mentions, c.precision) for c in withheld] == [
        ("st_elevation", "present", True, 20, 0.0)
    ]


def test_a_way_of_writing_a_finding_the_labels_contradict_is_withheld_and_not_the_finding() -> None:
    withheld = fit_withheld(
        _records(
            # German "st-senkung" never coded as ST depression, the English phrase always:
            # the finding as a whole is confirmed half of the time, one way of writing it never.
            [("sinusrhythmus. st-senkung.", ["SR"], "development")] * 20
            + [("sinus rhythm. st depression.", ["SR", "STD_"], "development")] * 20
        ),
        VOCABULARY,
        CalibrationConfig(min_mentions=15),
    )
    assert [(c.entity_id, c.status, c.machine_report, c.term, c.mentions) for c in withheld] == [
        ("st_depression", "present", False, "st-senkung", 20)
    ]
    vocabulary = VOCABULARY.model_copy(update={"withheld": tuple(withheld)})
    assert vocabulary.withholds("st_depression", "present", False, evidence="ST-Senkung")
    assert not vocabulary.withholds("st_depression", "present", False, evidence="ST depression")
    assert not vocabulary.withholds("st_depression", "present", False)


def test_without_labelled_development_records_nothing_is_fitted(tmp_path: Path) -> None:
    table = tmp_path / "reports.csv"
    table.write_text("id,text,labels\n1,sinus rhythm. st elevation.,SR\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "kmerl.cli", "calibrate", "--file", str(table)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and "no 'development' records with SCP labels" in result.stderr
    with pytest.raises(CalibrationError, match="1 records in all"):
        fit_withheld(_corpus().filter(pl.col("split") == "validation").head(1), VOCABULARY, CalibrationConfig())


def test_a_withheld_mention_stays_in_the_knowledge_flagged_and_is_no_entity(tmp_path: Path) -> None:
    withheld = fit_withheld(_corpus(), VOCABULARY, CalibrationConfig(min_mentions=15))
    vocabulary = VOCABULARY.model_copy(update={"withheld": tuple(withheld)})
    store = KnowledgeStore(tmp_path)
    reports = [f"Sinus rhythm. ST elevation. {MACHINE}", "Sinus rhythm. ST elevation."]
    run = extract_reports(reports, LexiconExtractor(vocabulary, max_mentions=12), store, vocabulary)
    mentions = store.table("mentions", run.knowledge_version).filter(pl.col("entity_id") == "st_elevation")
    flags = dict(zip(mentions["report_key"], mentions["flag"], strict=True))
    machine, confirmed = (report_key(prepare_report(r).text) for r in reports)
    assert flags == {machine: MentionFlag.WITHHELD_IN_CONTEXT.value, confirmed: None}
    assert mentions["evidence_found"].all()  # withheld for its kind, not for its evidence
    entities = store.entities(run.knowledge_version).filter(pl.col("entity_id") == "st_elevation")
    assert entities["report_key"].to_list() == [confirmed]
    unwithheld = extract_reports(reports, LexiconExtractor(VOCABULARY, max_mentions=12), store, VOCABULARY)
    assert unwithheld.knowledge_version != run.knowledge_version  # the withheld kinds are part of the version


def test_writing_the_kinds_replaces_only_that_section_of_the_vocabulary(tmp_path: Path) -> None:
    path = tmp_path / "vocabulary.json"
    shutil.copy(DEFAULT_VOCABULARY, path)
    before = json.loads(path.read_text(encoding="utf-8"))
    write_withheld(path, fit_withheld(_corpus(), VOCABULARY, CalibrationConfig(min_mentions=15)))
    after = json.loads(path.read_text(encoding="utf-8"))
    assert after["withheld"] == [
        {"entity_id": "st_elevation", "status": "present", "machine_report": True, "mentions": 20, "precision": 0.0}
    ]
    assert {k: v for k, v in after.items() if k != "withheld"} == {k: v for k, v in before.items() if k != "withheld"}
    assert load_vocabulary(path).withholds("st_elevation", "present", machine_report=True)
