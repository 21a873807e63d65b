"""Shared fixtures: the real sample archives (read in place) and builders of
corrupted or re-laid-out copies made from them inside each test's tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The model-stage fixtures (signal store -> feature store) are shared by several modules.
pytest_plugins = ["tests.model_fixtures"]

SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "ptbxl" / "ptbxl_database.csv").exists():
        pytest.fail(f"the sample archives are expected at {SHARED_DATA} (see README)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ptbxl_root(shared_data: Path) -> Path:
    return shared_data / "ptbxl"


@pytest.fixture(scope="session")
def cinc_root(shared_data: Path) -> Path:
    return shared_data / "cinc2021"


@pytest.fixture(scope="session")
def wfdb_samples_root(shared_data: Path) -> Path:
    return shared_data / "wfdb-samples"


# -- LLM engines -----------------------------------------------------------------------------
# Each vLLM engine takes ~5 GB and every core, so a session holds at most one: asking
# for the other kind stops the current one first. Engine tests live in one module per
# kind, so a session starts each kind once.

ENGINE_FIXTURES = {"vllm_engine", "vllm_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that asks for an engine is an ``engine`` test, whichever module it is in."""
    for item in items:
        if ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.engine)


class _EngineSlot:
    def __init__(self) -> None:
        self._kind: str | None = None
        self._engine: object = None
        self._stop: Callable[[], None] | None = None

    def get(self, kind: str, start: Callable[[], tuple[object, Callable[[], None]]]) -> object:
        if self._kind != kind:
            self.release()
            self._engine, self._stop = start()
            self._kind = kind
        return self._engine

    def release(self) -> None:
        if self._stop is not None:
            self._stop()
        self._kind, self._engine, self._stop = None, None, None


@pytest.fixture(scope="session")
def engine_slot() -> Iterator[_EngineSlot]:
    slot = _EngineSlot()
    yield slot
    slot.release()


@pytest.fixture(scope="session")
def llm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory per session: the embedded model is converted into it once."""
    return tmp_path_factory.mktemp("kmerl-home")


@pytest.fixture
def vllm_engine(engine_slot: _EngineSlot, llm_home: Path) -> object:
    """The real in-process vLLM engine with the embedded model."""
    from kmerl.extraction import ExtractionConfig
    from kmerl.extraction.embedded_model import resolve_model
    from kmerl.extraction.vllm_engine import VllmEngine

    def start() -> tuple[object, Callable[[], None]]:
        model = resolve_model(ExtractionConfig().model, llm_home)
        engine = VllmEngine(model.path, model.model_id, ExtractionConfig().engine, llm_home)
        return engine, engine.close

    return engine_slot.get("vllm", start)


@pytest.fixture
def vllm_server(engine_slot: _EngineSlot, llm_home: Path) -> object:
    """A real vLLM OpenAI-compatible server with the embedded model, on a free local port."""
    from kmerl.extraction import ExtractionConfig
    from kmerl.extraction.embedded_model import resolve_model
    from kmerl.extraction.openai_server import VllmServer

    def start() -> tuple[object, Callable[[], None]]:
        config = ExtractionConfig()
        model = resolve_model(config.model, llm_home)
        server = VllmServer(model.path, config.model, config.engine, llm_home, llm_home / "vllm-server.log").start()
        return server, server.stop

    return engine_slot.get("server", start)
