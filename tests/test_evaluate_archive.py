"""``kmerl evaluate``: a trained encoder on an archive it never saw, with diagnoses written
as abbreviations (as CPSC2018 ships them), and the bad inputs that must fail clearly."""

from pathlib import Path

import pytest

from kmerl.cli import main
from kmerl.model.train import train
from tests.archives import write_challenge_in_words
from tests.model_fixtures import tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory, feature_store_root: Path) -> Path:
    out = tmp_path_factory.mktemp("encoder")
    train(tiny_config(epochs=1), feature_store_root, out)
    return out / "model.pt"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KMERL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KMERL_CONFIG", raising=False)
    return tmp_path / "home"


def test_an_unseen_archive_is_evaluated_apart_from_the_pipeline(
    encoder: Path, home: Path, tmp_path: Path, cinc_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_challenge_in_words(cinc_root, tmp_path / "cpsc", 105)
    assert main(["evaluate", str(tmp_path / "cpsc"), "--encoder", str(encoder), "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "| task | leads | method | kmerl | untrained | kmerl - untrained (paired) | excludes 0 |" in out
    rows = [line for line in out.splitlines() if line.startswith("| cpsc_snomed |")]
    assert {row.split(" | ")[1] for row in rows} == {"I", "II", "limb3", "limb6", "precordial6", "all12"}
    assert any("| probe_100% |" in row for row in rows)  # half the records fit the probes
    assert "- cpsc_snomed: zero_shot_text above untrained: " in out
    assert (home / "evaluation" / "cpsc" / "signals").is_dir()
    assert not (home / "store").exists()  # no signal, knowledge or feature store of the pipeline touched


def test_bad_archives_and_encoders_fail_with_the_reason(
    encoder: Path, home: Path, tmp_path: Path, cinc_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_challenge_in_words(cinc_root, tmp_path / "odd", 6, {"E00001": "XYZ"})
    assert main(["evaluate", str(tmp_path / "odd"), "--encoder", str(encoder)]) == 2
    assert "XYZ (1)" in capsys.readouterr().err  # never a made-up code

    (tmp_path / "empty").mkdir()
    assert main(["evaluate", str(tmp_path / "empty"), "--encoder", str(encoder)]) == 2
    assert "none of its 0 records could be ingested" in capsys.readouterr().err

    assert main(["evaluate", str(tmp_path / "odd"), "--encoder", str(tmp_path / "missing.pt")]) == 2
    assert "no encoder file there" in capsys.readouterr().err
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(encoder.read_bytes()[:1000])
    assert main(["evaluate", str(tmp_path / "odd"), "--encoder", str(truncated)]) == 2
    assert "not a readable kmerl encoder" in capsys.readouterr().err

    assert main(["evaluate", str(tmp_path / "odd")]) == 2  # no --encoder and no training run in this home
    assert "make run" in capsys.readouterr().err
