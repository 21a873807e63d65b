import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from kmerl.ingest import IngestConfig, ingest_source
from kmerl.leads import LEAD_INDEX
from kmerl.preprocess import PreprocessConfig
from kmerl.signals import SignalStore, SourceLayout
from kmerl.sources import ChallengeSource, PtbXlSource, WfdbFolderSource
from kmerl.sources.dx_labels import UnmappedLabelsError
from tests.archives import copy_record, read_ptbxl_rows, write_challenge_in_words, write_ptbxl_subset, write_record
from tests.processes import wait_for_group_exit

PTBXL_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def _quarantine(store_root: Path, source: str) -> dict[str, tuple[str, str]]:
    manifest = SourceLayout(store_root, source).versions.load()
    rows = {}
    for shard in manifest.shards:
        for row in pq.read_table(SourceLayout(store_root, source).quarantine_file(shard.key)).to_pylist():
            rows[row["record_id"]] = (row["reason"], row["detail"])
    return rows


def _ingested(store_root: Path, source: str) -> dict[str, dict]:
    store = SignalStore.open(store_root, sources=[source])
    return {row["record_id"]: row for row in store.metadata().collect().to_dicts()}


def test_every_shared_record_is_accounted_for_and_parallel_equals_serial(tmp_path: Path, shared_data: Path) -> None:
    sources = [
        PtbXlSource(name="ptbxl", root=shared_data / "ptbxl"),
        ChallengeSource(name="cinc2021", root=shared_data / "cinc2021"),
        WfdbFolderSource(name="samples", root=shared_data / "wfdb-samples"),
    ]
    hashes = {}
    for workers in (1, 2):
        root = tmp_path / f"workers{workers}"
        manifests = [ingest_source(s, root, IngestConfig(workers=workers, records_per_shard=64)) for s in sources]
        assert sum(m.records_in for m in manifests) == 607
        assert all(m.ingested + m.quarantined == m.records_in for m in manifests)
        store = SignalStore.open(root)
        assert len(store) == sum(m.ingested for m in manifests) == len(set(store.record_ids))
        hashes[workers] = dict(store.metadata(["record_id", "content_hash"]).collect().iter_rows())
    assert hashes[1] == hashes[2]
    assert len(hashes[1]) == 607  # the sample archives hold no bad record


def test_rerun_reuses_every_shard_and_the_version(tmp_path: Path, ptbxl_root: Path) -> None:
    source = PtbXlSource(name="ptbxl", root=ptbxl_root)
    config = IngestConfig(workers=1, records_per_shard=100)
    first = ingest_source(source, tmp_path, config)
    layout = SourceLayout(tmp_path, "ptbxl")
    mtimes = {p: p.stat().st_mtime_ns for p in layout.signals.iterdir()}
    second = ingest_source(source, tmp_path, config)
    assert second.version == first.version and len(mtimes) == 5
    assert {p: p.stat().st_mtime_ns for p in layout.signals.iterdir()} == mtimes

    changed = ingest_source(source, tmp_path, config.model_copy(update={"preprocess": PreprocessConfig(target_fs=500)}))
    assert changed.version != first.version
    assert layout.versions.load(first.version).version == first.version  # the earlier version stays readable


@pytest.fixture
def bad_wfdb_folder(tmp_path: Path, ptbxl_root: Path, shared_data: Path) -> tuple[Path, dict[str, str]]:
    """A folder of real records, most of them corrupted; returns it and the expected
    quarantine reason per record (records expected to be ingested are absent)."""
    folder = tmp_path / "bad"
    good = ptbxl_root / "records100/00000/00001_lr"
    signal = np.asarray(__import__("wfdb").rdrecord(str(good)).p_signal)
    copy_record(good, folder, "good")

    truncated = copy_record(good, folder, "truncated_dat")
    dat = truncated.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:5000])
    copy_record(good, folder, "missing_dat").with_suffix(".dat").unlink()
    misnamed = copy_record(good, folder, "names_missing_file").with_suffix(".hea")
    misnamed.write_text(misnamed.read_text().replace("names_missing_file.dat", "elsewhere.dat"))
    (folder / "malformed_header.hea").write_text("this is not a WFDB header\nnor is this\n")
    (folder / "zero_length.hea").write_text("zero_length 1 100 0\nzero_length.dat 16 1000/mV 16 0 0 0 0 I\n")
    (folder / "zero_length.dat").write_bytes(b"")

    nan_lead = signal.copy()
    nan_lead[:, PTBXL_LEADS.index("V2")] = np.nan
    write_record(folder, "all_nan_lead", nan_lead, 100, PTBXL_LEADS)
    nan_runs = signal.copy()
    nan_runs[100:105, 0] = np.nan
    nan_runs[700:710, 4] = np.nan
    write_record(folder, "nan_runs", nan_runs, 100, PTBXL_LEADS)
    mostly_nan = signal.copy()
    mostly_nan[:, :8] = np.nan
    write_record(folder, "mostly_nan", mostly_nan, 100, PTBXL_LEADS)
    write_record(folder, "duplicated_leads", signal, 100, [*PTBXL_LEADS[:11], "ii"])
    write_record(folder, "unknown_leads", signal, 100, [f"lead{i}" for i in range(12)])
    copy_record(shared_data / "wfdb-samples/s0010_re", folder)
    copy_record(shared_data / "wfdb-samples/100", folder)
    expected = {
        "truncated_dat": "truncated_signal",
        "missing_dat": "missing_signal_file",
        "names_missing_file": "missing_signal_file",
        "malformed_header": "malformed_header",
        "zero_length": "zero_length_signal",
        "mostly_nan": "too_much_missing",
        "duplicated_leads": "duplicate_leads",
        "unknown_leads": "no_standard_leads",
    }
    return folder, expected


def test_bad_records_are_quarantined_by_name_and_the_rest_ingested(
    tmp_path: Path, bad_wfdb_folder: tuple[Path, dict[str, str]]
) -> None:
    folder, expected = bad_wfdb_folder
    manifest = ingest_source(WfdbFolderSource(name="bad", root=folder), tmp_path / "store", IngestConfig(workers=1))
    quarantine = _quarantine(tmp_path / "store", "bad")
    ingested = _ingested(tmp_path / "store", "bad")
    assert manifest.records_in == len(list(folder.glob("*.hea"))) == 13
    assert len(ingested) + len(quarantine) == manifest.records_in
    assert {rid.removeprefix("bad/"): reason for rid, (reason, _) in quarantine.items()} == expected
    for record_id, (_, detail) in quarantine.items():
        assert detail.startswith(f"{record_id}: ") and record_id.removeprefix("bad/") in detail

    assert set(ingested) == {f"bad/{n}" for n in ("good", "all_nan_lead", "nan_runs", "s0010_re", "100")}
    v2 = LEAD_INDEX["V2"]
    assert not ingested["bad/all_nan_lead"]["lead_mask"][v2]
    assert ingested["bad/all_nan_lead"]["lead_issues"] == [{"lead": "V2", "issue": "all samples are NaN/inf"}]
    assert ingested["bad/nan_runs"]["interpolated_samples"] == 15
    frank = ingested["bad/s0010_re"]
    assert frank["dropped_channels"] == ["vx", "vy", "vz"] and all(frank["lead_mask"])
    assert (frank["original_fs"], frank["original_samples"], frank["length_policy"]) == (1000.0, 38400, "cropped")
    holter = ingested["bad/100"]
    assert [i for i, present in enumerate(holter["lead_mask"]) if present] == [LEAD_INDEX["II"], LEAD_INDEX["V5"]]
    assert (holter["original_fs"], holter["length_policy"]) == (360.0, "cropped")


def test_csv_problems_are_quarantined_and_lossy_reports_kept(tmp_path: Path, ptbxl_root: Path) -> None:
    rows = read_ptbxl_rows(ptbxl_root)[:6]
    rows[3] = dict(rows[3], filename_lr="records100/00000/09999_lr")  # the file is absent
    rows.append(dict(rows[1]))  # the same ecg_id twice
    root = write_ptbxl_subset(ptbxl_root, tmp_path / "ptbxl", rows, encoding_errors={2: b" \xff\xfeabnormal"})
    manifest = ingest_source(PtbXlSource(name="px", root=root), tmp_path / "store", IngestConfig(workers=1))
    quarantine = _quarantine(tmp_path / "store", "px")
    ingested = _ingested(tmp_path / "store", "px")
    assert manifest.records_in == 7 and len(ingested) + len(quarantine) == 7
    assert {k: reason for k, (reason, _) in quarantine.items()} == {
        "px/4": "missing_header",
        "px/2": "duplicate_record_id",
    }
    assert "09999_lr.hea" in quarantine["px/4"][1]
    lossy = ingested["px/3"]
    assert "\ufffd" in lossy["report"] and lossy["report"].endswith("abnormal")
    assert any("not valid UTF-8" in note for note in lossy["notes"])


def test_killed_run_resumes_without_duplicates(tmp_path: Path, ptbxl_root: Path) -> None:
    store = tmp_path / "store"
    layout = SourceLayout(store, "px")
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from kmerl.ingest import IngestConfig, ingest_source
        from kmerl.preprocess import PreprocessConfig
        from kmerl.sources import WfdbFolderSource
        if __name__ == "__main__":
            config = IngestConfig(workers=2, records_per_shard=5, preprocess=PreprocessConfig(target_fs=250))
            source = WfdbFolderSource(name="px", root=Path({str(ptbxl_root / "records500")!r}))
            ingest_source(source, Path({str(store)!r}), config)
        """
    )
    (tmp_path / "run.py").write_text(script)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    process = subprocess.Popen([sys.executable, str(tmp_path / "run.py")], env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(layout.signals.glob("*.parquet"))) < 4:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    wait_for_group_exit(process.pid)
    assert layout.versions.current() is None  # nothing was published
    survivors = {p: p.stat().st_mtime_ns for p in layout.signals.glob("*.parquet")}

    config = IngestConfig(workers=1, records_per_shard=5, preprocess=PreprocessConfig(target_fs=250))
    manifest = ingest_source(WfdbFolderSource(name="px", root=ptbxl_root / "records500"), store, config)
    assert manifest.records_in == manifest.ingested == 500
    reader = SignalStore.open(store, sources=["px"])
    assert len(reader) == len(set(reader.record_ids)) == 500
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in survivors.items())  # finished shards reused
    assert not [p for p in layout.signals.iterdir() if p.name.startswith(".")]  # no partial files left


def test_a_sliced_source_splits_into_disjoint_partitions_that_cover_it(tmp_path: Path, ptbxl_root: Path) -> None:
    whole = PtbXlSource(name="ptbxl", root=ptbxl_root)
    sliced = whole.model_copy(update={"slices": 3})
    assert sliced.partition_keys() == ["ptbxl.000", "ptbxl.001", "ptbxl.002"]
    config = IngestConfig(workers=1, records_per_shard=64)
    manifests = [ingest_source(sliced, tmp_path, config, partition=key) for key in sliced.partition_keys()]
    ids = [set(SignalStore.open(tmp_path, sources=[key]).record_ids) for key in sliced.partition_keys()]
    assert sum(len(part) for part in ids) == len(set().union(*ids)) == 500
    assert all(m.records_in == sliced.count_partition(m.source, 100) > 100 for m in manifests)
    assert len(SignalStore.open(tmp_path)) == 500
    with pytest.raises(ValueError, match="not a partition"):
        ingest_source(sliced, tmp_path, config, partition="ptbxl")


def test_unmapped_challenge_labels_refuse_the_source_or_quarantine_only_their_records(
    tmp_path: Path, cinc_root: Path
) -> None:
    root = tmp_path / "cpsc"
    write_challenge_in_words(cinc_root, root, 6, {"E00002": "XYZ"})
    store = tmp_path / "store"
    with pytest.raises(UnmappedLabelsError, match=r"XYZ \(1\)"):
        ingest_source(ChallengeSource(name="cpsc", root=root), store, IngestConfig(workers=1))
    assert not (store / "cpsc").exists()  # refused before anything was written
    manifest = ingest_source(
        ChallengeSource(name="cpsc", root=root, unmapped_labels="quarantine"), store, IngestConfig(workers=1)
    )
    assert (manifest.records_in, manifest.ingested, manifest.quarantined) == (6, 5, 1)
    reason, detail = _quarantine(store, "cpsc")["cpsc/E00002"]
    assert reason == "unmapped_label" and detail.startswith("cpsc/E00002: ") and "XYZ" in detail
    assert all(
        label["system"] == "snomed" and label["code"].isdigit()
        for row in _ingested(store, "cpsc").values()
        for label in row["labels"]
    )
