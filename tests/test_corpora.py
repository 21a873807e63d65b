"""Report corpora read in place: the PTB-XL reports CSV, plain tables, and every bad row."""

import json
import re
from pathlib import Path

import polars as pl
import pytest

from kmerl.corpora import CorpusError, PtbXlReports, ReportTable, read_corpus


@pytest.fixture(scope="module")
def ptbxl_reports(shared_data: Path) -> Path:
    return shared_data / "ptbxl-reports"


def test_the_ptbxl_reports_corpus_splits_by_fold_and_marks_automatic_reports(ptbxl_reports: Path) -> None:
    rows = read_corpus(PtbXlReports(name="ptbxl_reports", path=ptbxl_reports))
    records = rows.records
    assert rows.rows_in == records.height == 4528 and rows.rejected.is_empty()
    assert records["record_id"].is_unique().all() and records["record_id"].str.starts_with("ptbxl_reports/").all()
    splits = dict(records.group_by("split").agg(pl.col("fold").unique().sort()).iter_rows())
    assert splits == {"development": list(range(1, 8)), "validation": [8]}
    assert set(records["report_kind"]) == {"automatic", "confirmed"}
    automatic = records.filter(pl.col("report_kind") == "automatic")["report"]
    assert automatic.str.contains("unbest").mean() > 0.95  # the machine's "unbestätigter bericht"
    assert records["labels"].list.len().min() > 0 and records["label_problem"].is_null().all()


def test_bad_rows_are_rejected_or_flagged_and_every_row_is_accounted_for(tmp_path: Path) -> None:
    path = tmp_path / "reports.csv"
    path.write_text(
        "ecg_id,report,scp_codes,strat_fold,validated_by_human\n"
        "1,sinusrhythmus,\"{'SR': 0.0}\",3,True\n"
        '1,a second row with the same id,"{}",3,True\n'
        ',a row without an id,"{}",8,False\n'
        '2,sinus rhythm,"{not a dict",9,False\n'
        "3,,,8,\n"
    )
    rows = read_corpus(PtbXlReports(name="bad", path=path))
    assert rows.rows_in == 5 and rows.records.height == 3
    assert rows.rejected.select("row", "reason").rows() == [(2, "duplicate_record_id"), (3, "missing_record_id")]
    flagged = rows.records.filter(pl.col("record_id") == "bad/2").row(0, named=True)
    assert flagged["labels"] is None and "not a dictionary" in flagged["label_problem"]
    empty = rows.records.filter(pl.col("record_id") == "bad/3").row(0, named=True)
    assert empty["report"] == "" and empty["labels"] == [] and empty["split"] == "validation"


def test_plain_tables_in_csv_and_parquet_with_any_label_format(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "text": ["sinus rhythm", "atrial fibrillation", "normal ecg", "x"],
            "labels": ["{'SR': 100}", json.dumps(["AFIB"]), "NORM; SR", "[1, 2"],
            "fold": ["dev", "dev", "val", "val"],
        }
    )
    frame.write_parquet(tmp_path / "table.parquet")
    frame.write_csv(tmp_path / "table.csv")
    for name in ("table.parquet", "table.csv"):
        rows = read_corpus(ReportTable(name="t", path=tmp_path / name, split_column="fold"))
        codes = [None if labels is None else [label["code"] for label in labels] for labels in rows.records["labels"]]
        assert codes == [["SR"], ["AFIB"], ["NORM", "SR"], None]
        assert rows.records["split"].to_list() == ["dev", "dev", "val", "val"]
        assert rows.records["label_problem"].to_list()[:3] == [None] * 3


@pytest.mark.parametrize(
    ("content", "corpus", "message"),
    [
        ("id,txt\n1,a\n", {"kind": "report_table"}, "required column(s) ['text'] not found"),
        ("ecg_id,text\n1,a\n", {"kind": "ptbxl_reports"}, "required column(s) ['report'] not found"),
        ("id,text\n1,a\n", {"kind": "report_table", "split_column": "fold"}, "split column 'fold' not found"),
    ],
)
def test_a_file_that_cannot_be_a_corpus_is_an_error_naming_it(
    tmp_path: Path, content: str, corpus, message: str
) -> None:
    path = tmp_path / "corpus.csv"
    path.write_text(content)
    config = (PtbXlReports if corpus.pop("kind") == "ptbxl_reports" else ReportTable)(name="c", path=path, **corpus)
    with pytest.raises(CorpusError, match=re.escape(message)) as raised:
        read_corpus(config)
    assert str(path) in str(raised.value)
    with pytest.raises(CorpusError, match="cannot be read"):
        read_corpus(ReportTable(name="c", path=tmp_path / "missing.csv"))
