"""A vLLM scheduler whose engine steps do not depend on timing.

vLLM compiles each request's grammar in a background thread and schedules a request
once its grammar is ready, so under CPU contention two requests can share an engine step
they would not share otherwise — and on the CPU build a request's answer can depend on
the requests it shares steps with. This scheduler waits, before each step, until every
waiting request's grammar is compiled, so which requests share a step follows from the
queue alone. vLLM imports it by name in its engine-core process
(``scheduler_cls``); its own scheduler does the rest.
"""

from __future__ import annotations

import time

from vllm.v1.core.sched.output import SchedulerOutput
from vllm.v1.core.sched.scheduler import Scheduler

_POLL_S = 0.001


class GrammarsFirstScheduler(Scheduler):
    """vLLM's scheduler, after every waiting request's grammar is ready (or failed)."""

    def schedule(self, throttle_prefills: bool = False) -> SchedulerOutput:
        compiling = [
            request.structured_output_request
            for request in self.waiting
            if request.structured_output_request is not None
        ]
        # A grammar compiles in milliseconds; a failed one counts as ready (vLLM fails its request).
        while not all(structured.is_grammar_ready for structured in compiling):
            time.sleep(_POLL_S)
        return super().schedule(throttle_prefills)
