from pathlib import Path

import numpy as np
import pytest

from kmerl.records import Label, Reason, RecordError, RecordRef, Split
from kmerl.sources import ChallengeSource, MimicIvEcgSource, PtbXlSource, WfdbFolderSource
from kmerl.sources.dx_labels import UnmappedLabelsError
from kmerl.wfdb_io import read_header
from tests.archives import read_ptbxl_rows, write_challenge_in_words, write_mimic_archive


def _refs(source, target_fs: int = 100) -> list[RecordRef]:
    items = list(source.iter_records(target_fs))
    assert all(isinstance(item, RecordRef) for item in items)
    return items


def test_ptbxl_lists_every_row_with_folds_labels_and_patient(ptbxl_root: Path) -> None:
    source = PtbXlSource(name="ptbxl", root=ptbxl_root)
    refs = _refs(source)
    assert len(refs) == source.count_records() == 500
    first = refs[0]
    assert first.record_id == "ptbxl/1" and first.patient_id == "15709" and first.fold == 3
    assert first.report == "sinusrhythmus periphere niederspannung"
    assert Label("scp", "NORM", 100.0) in first.labels
    assert first.record_path == ptbxl_root / "records100/00000/00001_lr"
    by_fold = {ref.fold: ref.split for ref in refs}
    assert by_fold[9] is Split.VAL and by_fold[10] is Split.TEST and by_fold[1] is Split.TRAIN
    assert _refs(source, target_fs=500)[0].relative_path == "records500/00000/00001_hr"
    assert [int(ref.native_id) for ref in refs] == sorted(int(r["ecg_id"]) for r in read_ptbxl_rows(ptbxl_root))


def test_challenge_turns_snomed_codes_into_text(cinc_root: Path) -> None:
    source = ChallengeSource(name="cinc2021", root=cinc_root)
    refs = _refs(source)
    assert len(refs) == source.count_records() == 105
    ref = next(r for r in refs if r.native_id == "S0001")
    completed = source.complete(ref, read_header(ref.record_path))
    assert completed.labels == (Label("snomed", "251146004"), Label("snomed", "426783006"))
    assert completed.report == "low qrs voltages, sinus rhythm"
    assert completed.age == 81.0 and completed.sex == "female"


def test_wfdb_folder_reports_are_header_comments(wfdb_samples_root: Path) -> None:
    source = WfdbFolderSource(name="samples", root=wfdb_samples_root)
    refs = {ref.native_id: ref for ref in _refs(source)}
    assert set(refs) == {"100", "s0010_re"}
    completed = source.complete(refs["s0010_re"], read_header(refs["s0010_re"].record_path))
    assert "Reason for admission: Myocardial infarction" in (completed.report or "")


def test_hashed_splits_keep_a_patient_together(tmp_path: Path, ptbxl_root: Path) -> None:
    expected = write_mimic_archive(tmp_path, ptbxl_root, [1, 2, 3, 4, 5, 6])
    refs = _refs(MimicIvEcgSource(name="mimic", root=tmp_path))
    splits_by_patient: dict[str, set[Split]] = {}
    for ref in refs:
        splits_by_patient.setdefault(ref.patient_id or "", set()).add(ref.split)  # type: ignore[arg-type]
    assert all(len(splits) == 1 for splits in splits_by_patient.values())
    assert len(refs) == len(expected)


def test_mimic_joins_reports_by_study_id(tmp_path: Path, ptbxl_root: Path) -> None:
    expected = write_mimic_archive(tmp_path, ptbxl_root, [1, 2, 3, 4])
    source = MimicIvEcgSource(name="mimic", root=tmp_path)
    refs = _refs(source)
    assert source.count_records() == len(refs) == 4
    for ref in refs:
        want = expected[ref.native_id]
        assert ref.report == want["report"], ref.record_id
        assert ref.patient_id == want["subject"] and ref.relative_path == want["relative"]
        assert ref.record_id == f"mimic/{ref.native_id}"
    unreported = next(ref for ref in refs if expected[ref.native_id]["report"] is None)
    assert any("no machine_measurements.csv row" in note for note in unreported.notes)
    assert "Left axis deviation" in str(expected[refs[0].native_id]["report"])
    assert np.all([ref.record_path.with_suffix(".hea").exists() for ref in refs])


def test_challenge_labels_written_as_abbreviations_read_as_the_same_codes(tmp_path: Path, cinc_root: Path) -> None:
    codes = write_challenge_in_words(cinc_root, tmp_path / "cpsc", 12)
    in_words = ChallengeSource(name="cpsc", root=tmp_path / "cpsc")
    in_words.check()  # every abbreviation maps
    as_codes = ChallengeSource(name="cinc2021", root=cinc_root)
    for ref in _refs(in_words):
        written = in_words.complete(ref, read_header(ref.record_path))
        original = as_codes.complete(ref, read_header(cinc_root / ref.native_id))
        assert [label.code for label in written.labels] == codes[ref.native_id]
        assert (written.labels, written.report) == (original.labels, original.report)


def test_an_unmapped_label_is_an_error_listing_every_one_or_quarantines_its_records(
    tmp_path: Path, cinc_root: Path
) -> None:
    write_challenge_in_words(cinc_root, tmp_path / "cpsc", 12, {"E00001": "XYZ", "E00002": "XYZ", "E00003": "LQRSV2"})
    with pytest.raises(UnmappedLabelsError) as refused:
        ChallengeSource(name="cpsc", root=tmp_path / "cpsc").check()
    assert refused.value.unmapped == {"XYZ": 2, "LQRSV2": 1}
    assert "XYZ (2), LQRSV2 (1)" in str(refused.value) and "label_map" in str(refused.value)

    quarantining = ChallengeSource(name="cpsc", root=tmp_path / "cpsc", unmapped_labels="quarantine")
    quarantining.check()
    ref = next(r for r in _refs(quarantining) if r.native_id == "E00001")
    with pytest.raises(RecordError) as error:
        quarantining.complete(ref, read_header(ref.record_path))
    assert error.value.reason is Reason.UNMAPPED_LABEL and "XYZ" in error.value.detail

    (tmp_path / "labels.csv").write_text("label,snomed_code\nxyz,164889003\nLQRSV2,251146004\n")
    mapped = ChallengeSource(name="cpsc", root=tmp_path / "cpsc", label_map=tmp_path / "labels.csv")
    mapped.check()
    assert Label("snomed", "164889003") in mapped.complete(ref, read_header(ref.record_path)).labels
