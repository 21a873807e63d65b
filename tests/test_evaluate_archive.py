"""``kmerl evaluate``: a trained encoder on an archive it never saw, with diagnoses written
as abbreviations (as CPSC2018 ships them), and the bad inputs that must fail clearly."""

import shutil
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance
from pydantic import ValidationError

from assets.shared.metadata import metadata_values
from kmerl.cli import main
from kmerl.config import KmerlConfig
from kmerl.model.config import EvaluationConfig, ModelConfig
from kmerl.model.runs import RunStore
from kmerl.model.train import train
from kmerl.sources import ChallengeSource, PtbXlSource
from pipeline.defs import build_definitions
from pipeline.defs.jobs import ARCHIVES_JOB
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
    assert any("| probe_100% |" in row for row in rows)
    (results,) = (home / "evaluation" / "cpsc").glob("results-*/results.parquet")
    scored = pl.read_parquet(results).filter(pl.col("lead_subset") == "all12")
    assert scored["n_test"].n_unique() == 1 and scored["n_test"][0] >= 100  # every record, probes out of fold
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


def test_each_configured_evaluation_archive_is_a_partition_of_external_evaluation(
    encoder: Path, tmp_path: Path, cinc_root: Path, ptbxl_root: Path
) -> None:
    write_challenge_in_words(cinc_root, tmp_path / "cpsc", 105)
    write_challenge_in_words(cinc_root, tmp_path / "odd", 6, {"E00001": "XYZ"})
    config = KmerlConfig(
        home=tmp_path / "home",
        sources=[PtbXlSource(name="ptbxl", root=ptbxl_root)],
        evaluation_archives=[
            ChallengeSource(name=name, root=tmp_path / name, val_fraction=0.0, test_fraction=0.5)
            for name in ("cpsc", "odd")
        ],
        model=ModelConfig(evaluation=EvaluationConfig(bootstrap=50)),
    )
    runs = RunStore(config.layout.runs)
    shutil.copytree(encoder.parent, runs.run("tiny").root)
    runs.publish("tiny")  # the current encoder, as a training run leaves it
    job = build_definitions(config).resolve_job_def(ARCHIVES_JOB)
    with DagsterInstance.ephemeral() as instance:
        scored = job.execute_in_process(partition_key="cpsc", instance=instance)
        refused = job.execute_in_process(partition_key="odd", instance=instance, raise_on_error=False)
    (event,) = scored.asset_materializations_for_node("external_evaluation")
    metadata = metadata_values(event.metadata)
    assert "| cpsc_snomed | all12 | zero_shot_text |" in str(metadata["results_table"])
    assert metadata["encoder"] == str(runs.model_file(runs.current()))
    assert {e.check_name: e.passed for e in scored.get_asset_check_evaluations()} == {"scored_beside_untrained": True}
    assert not config.layout.knowledge_store.exists() and not config.layout.feature_store.exists()

    assert not refused.success  # an unmapped label fails the partition, naming it
    (failure,) = [e for e in refused.all_events if e.is_step_failure]
    assert "XYZ (1)" in str(failure.step_failure_data.user_failure_data.description)

    with pytest.raises(ValidationError, match="pretrained on: again"):
        KmerlConfig(
            home=tmp_path / "home",
            sources=[PtbXlSource(name="ptbxl", root=ptbxl_root)],
            evaluation_archives=[PtbXlSource(name="again", root=ptbxl_root)],
        )
