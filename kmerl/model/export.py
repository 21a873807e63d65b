"""Exporting a trained encoder as files other tools read: ``model.safetensors`` (tensors
only, nothing executes on load), ``config.json`` (what rebuilds the architecture) and a
model card, ``README.md``, with its data, knowledge and evaluation figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kmerl.atomic import atomic_write, write_text_atomic

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"


def export_encoder(model_path: Path, out_dir: Path) -> Path:
    """Write the three files for the encoder at ``model_path`` into ``out_dir``; the config is
    written last, so a folder with one holds a whole export."""
    from safetensors.torch import save

    from kmerl.model.checkpoint import load_state
    from kmerl.model.evaluation.archive import read_encoder_input

    read_encoder_input(model_path)  # a clear error for a missing or truncated file
    state = load_state(model_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.contiguous() for name, tensor in state["model"].items()}
    with atomic_write(out_dir / WEIGHTS) as handle:
        handle.write(save(tensors))
    config = {key: state[key] for key in ("config", "input", "text_dim", "entity_ids", "feature_store_version")}
    write_text_atomic(out_dir / CARD, model_card(config, _latest_results(model_path.parent)))
    write_text_atomic(out_dir / CONFIG, json.dumps(config, indent=2, sort_keys=True))
    return out_dir


def load_exported(folder: Path, device: str = "cpu") -> Any:
    """The encoder of an export folder, in eval mode (a :class:`~kmerl.model.network.KmerlModel`)."""
    from safetensors.torch import load_file

    from kmerl.model.config import TrainConfig
    from kmerl.model.network import KmerlModel

    config = json.loads((folder / CONFIG).read_text())
    weights = load_file(folder / WEIGHTS, device=device)
    train_config = TrainConfig.model_validate(config["config"])
    shape = train_config.encoder.input_shape(**config["input"])
    model = KmerlModel(train_config, shape, config["text_dim"], weights["entity_embeddings"])
    model.load_state_dict(weights)
    return model.to(device).eval()


def model_card(config: dict[str, Any], results: str | None) -> str:
    encoder = config["config"]["encoder"]
    lines = [
        "# K-MERL ECG encoder",
        "",
        f"- input: 12 leads at {config['input']['fs']} Hz, {config['input']['samples']} samples; absent leads masked",
        f"- encoder: {encoder.get('tokenizer', '?')} tokens, width {encoder.get('width')}, "
        f"embedding {encoder.get('embed_dim')}",
        f"- trained on feature store version `{config['feature_store_version']}` "
        f"(its manifest names the signal and knowledge versions it was built from)",
        f"- knowledge: {len(config['entity_ids'])} vocabulary entities",
        "- files: `model.safetensors` (weights), `config.json` (architecture, input, vocabulary)",
        "",
        "## Evaluation",
        "",
        results or "No evaluation was found beside this encoder's run.",
    ]
    return "\n".join(lines) + "\n"


def _latest_results(run_dir: Path) -> str | None:
    tables = sorted(run_dir.glob("evaluation-*/results.md"), key=lambda path: path.stat().st_mtime)
    return tables[-1].read_text() if tables else None
