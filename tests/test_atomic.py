from pathlib import Path

import pytest

from kmerl.atomic import TEMP_MARKER, atomic_path, remove_stale_temp_files, write_text_atomic


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "data.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        temp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_only_abandoned_temporaries_are_removed(tmp_path: Path) -> None:
    abandoned = tmp_path / f".x.parquet{TEMP_MARKER}dead"
    abandoned.write_bytes(b"partial")
    with atomic_path(tmp_path / "y.parquet") as live:
        live.write_bytes(b"being written")
        assert remove_stale_temp_files(tmp_path) == 1
        assert live.exists() and not abandoned.exists()
    assert (tmp_path / "y.parquet").read_bytes() == b"being written"
