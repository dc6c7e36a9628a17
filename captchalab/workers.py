"""Worker processes for rendering and segmentation, shared by every command in one program."""

from __future__ import annotations

import atexit
import multiprocessing
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from typing import Callable, Iterable, Iterator

_pools: dict[tuple, ProcessPoolExecutor] = {}


def _init(plugin_dirs):
    import os

    import cv2

    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would fight them
    # the network in the main process is the bottleneck of an attack: let it have the CPU
    # whenever it wants it, and render or segment in the gaps
    os.nice(5)
    from .plugins import load_plugins

    load_plugins(list(plugin_dirs))


def pool(workers: int, plugin_dirs=()) -> ProcessPoolExecutor:
    """A started pool of `workers` processes, kept for the life of the program.

    Workers are forked from a fork server that imported the renderer and segmenter but never
    TensorFlow, so they start fast and are safe even when the main process runs the network.
    """
    key = (workers, tuple(plugin_dirs))
    if key not in _pools:
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(
                ["captchalab.attack", "captchalab.plugins", "captchalab.data.dataset", "captchalab.attackers.segmenter"]
            )
        else:
            ctx = multiprocessing.get_context("spawn")
        executor = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(tuple(plugin_dirs),))
        list(executor.map(abs, range(workers)))  # start every worker now, not inside a timed run
        _pools[key] = executor
    return _pools[key]


@atexit.register
def _shutdown() -> None:
    for executor in _pools.values():
        executor.shutdown(cancel_futures=True)
    _pools.clear()


def ordered_map(executor: ProcessPoolExecutor, fn: Callable, calls: Iterable[tuple], ahead: int) -> Iterator:
    """fn(*args) for each args of `calls` on `executor`, the results in order, with at most
    `ahead` calls sent and not yet taken (Executor.map sends them all at once): memory and the
    cost of sending stay flat however many calls there are."""
    calls = iter(calls)
    sent = deque(executor.submit(fn, *args) for args in islice(calls, ahead))
    try:
        while sent:
            result = sent.popleft().result()
            for args in islice(calls, 1):
                sent.append(executor.submit(fn, *args))
            yield result
    finally:
        for future in sent:
            future.cancel()
