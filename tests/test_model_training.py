import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kmerl.features import FeatureStore
from kmerl.model.checkpoint import epoch_checkpoints, load_model, load_state
from kmerl.model.runs import read_metrics
from kmerl.model.train import train, warmup_cosine
from tests.model_fixtures import tiny_config

REPO = Path(__file__).resolve().parents[1]


class _Killed(Exception):
    pass


def _kill_at(step: int):
    def on_metrics(metrics: dict[str, object]) -> None:
        if metrics["event"] == "step" and metrics["step"] == step:
            raise _Killed

    return on_metrics


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_state(path)["model"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, feature_store_root: Path) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    train(tiny_config(epochs=3), feature_store_root, out)
    return out


def test_training_writes_checkpoints_metrics_and_a_loadable_model(
    uninterrupted: Path, feature_store: FeatureStore
) -> None:
    metrics = read_metrics(uninterrupted)
    epochs = [m for m in metrics if m["event"] == "epoch"]
    steps = [m for m in metrics if m["event"] == "step"]
    per_epoch = 95 // 16  # train rows with a report / batch size
    assert [m["epoch"] for m in epochs] == [1, 2, 3]
    assert [m["step"] for m in steps] == list(range(1, 3 * per_epoch + 1))
    assert all(m["train_loss"] > 0 and "val_loss" in m for m in epochs)
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]  # it learns
    assert len(epoch_checkpoints(uninterrupted / "checkpoints")) == 2  # keep_checkpoints
    model = load_model(uninterrupted / "model.pt")
    assert not model.training and model.entity_embeddings.shape[0] == feature_store.manifest.n_entities


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_weights(
    uninterrupted: Path, feature_store_root: Path, tmp_path: Path
) -> None:
    config = tiny_config(epochs=3)
    with pytest.raises(_Killed):
        train(config, feature_store_root, tmp_path, on_metrics=_kill_at(step=8))  # in epoch 2
    assert [p.name for p in epoch_checkpoints(tmp_path / "checkpoints")] == ["epoch-0001.pt"]
    result = train(config, feature_store_root, tmp_path)
    assert result.epochs == 3
    resumed, reference = _weights(tmp_path / "model.pt"), _weights(uninterrupted / "model.pt")
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[name], reference[name]) for name in reference)
    # the interrupted epoch's metrics were replaced, not duplicated
    assert [m["step"] for m in read_metrics(tmp_path) if m["event"] == "step"] == list(range(1, 16))


def test_an_encoder_whose_patches_do_not_tile_the_records_is_refused_naming_the_settings(
    feature_store_root: Path, tmp_path: Path
) -> None:
    config = tiny_config(encoder={"width": 16, "depth": 1, "heads": 2, "embed_dim": 16, "patch_seconds": 0.03})
    with pytest.raises(ValueError, match=r"1000 samples .* patches of 3 samples .*encoder.patch_seconds = 0.03"):
        train(config, feature_store_root, tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_a_run_directory_refuses_another_configuration(uninterrupted: Path, feature_store_root: Path) -> None:
    with pytest.raises(ValueError, match="use a new directory"):
        train(tiny_config(epochs=3, seed=1), feature_store_root, uninterrupted)


def test_gradient_accumulation_and_bf16_autocast(feature_store_root: Path, tmp_path: Path) -> None:
    result = train(
        tiny_config(epochs=1, batch_size=16, grad_accumulation=2, precision="bf16"), feature_store_root, tmp_path
    )
    assert result.steps == 95 // 8 // 2
    assert torch.isfinite(torch.tensor(result.final["train_loss"]))


def test_warmup_then_cosine_schedule() -> None:
    factors = [warmup_cosine(step, total=100, warmup=10, floor=0.1) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[10:]))
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)


@pytest.mark.slow
def test_ddp_with_two_gloo_processes_reports_from_rank_zero_only(feature_store_root: Path, tmp_path: Path) -> None:
    config = tiny_config(epochs=2, batch_size=8)
    (tmp_path / "config.json").write_text(config.model_dump_json())
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "kmerl.model.train", "--features", str(feature_store_root), "--out", str(tmp_path / "run"),
        "--config", str(tmp_path / "config.json"),
    ]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = [json.loads(line) for line in done.stdout.splitlines()]  # the result, printed by rank 0 only
    metrics = read_metrics(tmp_path / "run")
    per_epoch = 95 // (8 * 2)  # each process takes its share of every epoch
    assert [m["epoch"] for m in metrics if m["event"] == "epoch"] == [1, 2]  # once, not once per rank
    assert [m["step"] for m in metrics if m["event"] == "step"] == list(range(1, 2 * per_epoch + 1))
    assert result["steps"] == 2 * per_epoch and result["model_path"] == str(tmp_path / "run" / "model.pt")
    load_model(tmp_path / "run" / "model.pt")


@pytest.mark.slow
def test_the_command_reports_through_dagster_pipes(feature_store_root: Path, tmp_path: Path) -> None:
    from dagster import AssetExecutionContext, PipesSubprocessClient, asset, materialize

    (tmp_path / "config.json").write_text(tiny_config(epochs=1).model_dump_json())
    messages: list[object] = []

    @asset
    def encoder(context: AssetExecutionContext, pipes: PipesSubprocessClient):
        command = [
            sys.executable, "-m", "kmerl.model.train", "--features", str(feature_store_root),
            "--out", str(tmp_path / "run"), "--config", str(tmp_path / "config.json"), "--pipes",
        ]  # fmt: skip
        invocation = pipes.run(command=command, context=context, env={"PYTHONPATH": str(REPO)})
        messages.extend(invocation.get_custom_messages())
        return invocation.get_materialize_result()

    result = materialize([encoder], resources={"pipes": PipesSubprocessClient(cwd=str(REPO))})
    assert result.success
    metadata = result.asset_materializations_for_node("encoder")[0].metadata
    assert metadata["steps"].value == 95 // 16 and metadata["model_path"].value == str(tmp_path / "run" / "model.pt")
    assert messages == read_metrics(tmp_path / "run")  # every step and epoch, in order
