from pathlib import Path

import pytest
from upath import UPath

from kmerl.atomic import TEMP_MARKER, atomic_write, remove_stale_temp_files, write_text_atomic


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "data.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_write(target, "w") as handle:
        handle.write("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_only_abandoned_temporaries_are_removed(tmp_path: Path) -> None:
    abandoned = tmp_path / f".x.parquet{TEMP_MARKER}dead"
    abandoned.write_bytes(b"partial")
    with atomic_write(tmp_path / "y.parquet") as handle:
        handle.write(b"being written")
        live = [p for p in tmp_path.iterdir() if p.name.startswith(".y.parquet")]
        assert remove_stale_temp_files(tmp_path) == 1
        assert live[0].exists() and not abandoned.exists()
    assert (tmp_path / "y.parquet").read_bytes() == b"being written"


def test_object_store_writes_publish_only_complete_files() -> None:
    target = UPath("memory://atomic-test/dir/data.txt")
    write_text_atomic(target, "complete")
    with pytest.raises(RuntimeError), atomic_write(target, "w") as handle:
        handle.write("half")
        raise RuntimeError("failed mid-write")
    assert target.read_text() == "complete"
