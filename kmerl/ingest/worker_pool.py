"""Running shard tasks in worker processes with a bounded number in flight."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class InlineExecutor(Executor):
    """Runs each task at submission, in this process: one worker, easy to debug and profile."""

    def submit(self, fn: Callable[..., R], /, *args: object, **kwargs: object) -> Future[R]:
        future: Future[R] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # handed to the caller through the future
            future.set_exception(error)
        return future


def make_executor(workers: int) -> Executor:
    """A process pool for ``workers > 1``; spawned, because forking after polars'
    thread pool has started can deadlock."""
    if workers == 1:
        return InlineExecutor()
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def bounded_map(executor: Executor, fn: Callable[[T], R], items: Iterable[T], max_in_flight: int) -> Iterator[R]:
    """Results of ``fn`` over ``items`` as they complete, with at most
    ``max_in_flight`` submitted and unfinished: memory stays bounded however long
    ``items`` is."""
    pending: set[Future[R]] = set()
    for item in items:
        pending.add(executor.submit(fn, item))
        while len(pending) >= max_in_flight:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in done)
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        yield from (future.result() for future in done)
