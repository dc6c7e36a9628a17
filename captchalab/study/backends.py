"""Where a grid's tasks run: in this process or a local process pool (`local`), or as Ray core
tasks on a cluster (`ray`). Both give `map(fn, tasks, on_result, training)`: each task's outcome
({"status": "done", "value": ...} or {"status": "failed", "error": ...}) is handed to
`on_result(index, outcome)` in the driver as soon as it arrives, in any order. A task whose
worker process dies is retried (at most `retries` times), then reported as failed.

On Ray a task can run more than once (a node lost mid-task, or after it finished but before its
result reached the driver: Ray runs it again), but its outcome reaches the driver once, and only
the driver records results (each cell in a file of its own, written atomically). A lost node is
said once, in one line, through `notice`; Ray's own log lines stay out of captchalab's output
unless `verbose`.
"""

from __future__ import annotations

import os
import socket
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from ..errors import CaptchalabError
from ..runtime import limit_threads, quiet_native_output
from .cells import cpu_count, failure, guarded

RAY_HINT = "the ray backend needs the optional extra: pip install 'captchalab[ray]'"


def _worker_init(cpus: int, verbose: bool) -> None:
    quiet_native_output(verbose)
    limit_threads(cpus)


def _task(fn, args, cpus: int | None = None):
    if cpus:  # a Ray task: size the thread pools to this task's CPUs before TensorFlow starts
        _worker_init(cpus, os.environ.get("CAPTCHALAB_VERBOSE") == "1")
    return guarded(fn, "", *args)


class LocalBackend:
    """`jobs` = 1: tasks run one after another in this process (each may use worker processes
    of its own). `jobs` > 1: a pool of `jobs` fresh processes, each with cores/jobs threads."""

    name = "local"

    def __init__(self, jobs: int = 1, retries: int = 2, verbose: bool = False):
        if jobs < 1:
            raise CaptchalabError(f"`jobs` must be at least 1, got {jobs}")
        self.jobs, self.retries, self.verbose = jobs, retries, verbose
        self.in_process = jobs == 1

    def map(self, fn: Callable, tasks: list[tuple], on_result: Callable[[int, dict], None], training: bool) -> None:
        if self.jobs == 1:
            for i, args in enumerate(tasks):
                on_result(i, guarded(fn, "", *args))
            return
        import multiprocessing

        ctx = multiprocessing.get_context(
            "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        )
        cpus = max(1, cpu_count() // self.jobs)
        attempts = {i: 0 for i in range(len(tasks))}
        left = list(range(len(tasks)))
        while left:
            # training tasks get a fresh process each (max_tasks_per_child=1): repeated Keras
            # training in one process keeps memory it never gives back
            with ProcessPoolExecutor(
                self.jobs,
                mp_context=ctx,
                initializer=_worker_init,
                initargs=(cpus, self.verbose),
                max_tasks_per_child=1 if training else None,
            ) as pool:
                futures = {pool.submit(_task, fn, tasks[i]): i for i in left}
                left = []
                broken = False
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        i = futures[future]
                        try:
                            on_result(i, future.result())
                        except BrokenProcessPool as exc:
                            broken = True
                            attempts[i] += 1
                            if attempts[i] > self.retries:
                                on_result(
                                    i, failure("", RuntimeError(f"worker process died {attempts[i]} times: {exc}"))
                                )
                            else:
                                left.append(i)
                if broken:
                    left.sort()


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """A one-line error, quickly, when nothing answers at a Ray head's host:port."""
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep:
        raise CaptchalabError(f"`address` {address!r}: expected HOST:PORT (or auto)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        raise CaptchalabError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); "
            "start one with `ray start --head` or omit `address`"
        ) from None


class RayBackend:
    """Ray core tasks, one per grid task; results return to the driver. Without `address` a
    local Ray instance sized to this machine is started."""

    name = "ray"
    in_process = False

    def __init__(
        self,
        address: str | None = None,
        cpus_per_task: int = 1,
        retries: int = 2,
        verbose: bool = False,
        notice: Callable[[str], None] | None = None,
    ):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise CaptchalabError(RAY_HINT) from None
        self.address, self.cpus, self.retries, self.verbose = address, cpus_per_task, retries, verbose
        self.notice = notice or (lambda message: None)
        self._started = False

    def _start(self) -> None:
        import ray

        if ray.is_initialized():
            return
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ["CAPTCHALAB_VERBOSE"] = "1" if self.verbose else "0"
        if self.address:
            check_reachable(self.address)
        kwargs = dict(
            include_dashboard=False,
            log_to_driver=self.verbose,
            configure_logging=self.verbose,
            runtime_env={
                "env_vars": {
                    "CAPTCHALAB_VERBOSE": os.environ["CAPTCHALAB_VERBOSE"],
                    "TF_CPP_MIN_LOG_LEVEL": "0" if self.verbose else "3",
                }
            },
        )
        try:
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=cpu_count(), object_store_memory=256 * 2**20, **kwargs)
        except Exception as exc:  # connection and start-up failures come in many types
            raise CaptchalabError(_ray_failure(str(exc), self.address)) from None
        self._started = True
        if self.address:  # a private instance runs this very Python: only a joined cluster's nodes may differ
            self._check_nodes()

    def _check_nodes(self) -> None:
        """Every node runs captchalab, the same version as here, or a one-line error now (rather
        than every cell failing on that node later)."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = _captchalab_version()
        probe = ray.remote(num_cpus=0, max_retries=0)(_captchalab_version)
        refs = {
            probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(): address
            for node, address in _alive_nodes().items()
        }
        for ref, address in refs.items():
            try:
                version = ray.get(ref, timeout=300)
            except ray.exceptions.RayError as exc:
                lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
                why = lines[-1] if lines else type(exc).__name__
                raise CaptchalabError(f"the Ray node at {address} cannot run captchalab's tasks: {why[:200]}") from None
            if version != here:
                raise CaptchalabError(
                    f"the Ray node at {address} runs captchalab {version}, this machine {here}: "
                    "install the same version on every node"
                )

    def map(self, fn: Callable, tasks: list[tuple], on_result: Callable[[int, dict], None], training: bool) -> None:
        import ray

        self._start()
        options = dict(num_cpus=self.cpus, max_retries=self.retries)
        if training:
            options["max_calls"] = 1  # a fresh worker per training: Keras keeps memory between fits
        remote = ray.remote(**options)(_task)
        refs = {remote.remote(fn, args, self.cpus): i for i, args in enumerate(tasks)}
        pending, nodes, looked = list(refs), _alive_nodes(), time.monotonic()
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            if time.monotonic() - looked >= 1.0:  # the cluster asked once a second, not once a result
                now, looked = _alive_nodes(), time.monotonic()
                for lost in nodes.keys() - now.keys():
                    self.notice(f"a Ray node was lost ({nodes[lost]}): its tasks are retried on the others")
                nodes = now
            if not done:
                continue
            i = refs[done[0]]
            try:
                outcome = ray.get(done[0])
            except ray.exceptions.RayError as exc:  # the worker died more than `retries` times
                outcome = failure("", RuntimeError(str(exc).strip().splitlines()[0][:300]))
            on_result(i, outcome)

    def shutdown(self) -> None:
        if self._started:
            import ray

            ray.shutdown()


def _captchalab_version() -> str:
    from importlib import metadata

    return metadata.version("captchalab")


def _alive_nodes() -> dict[str, str]:
    """The cluster's live nodes: id -> address."""
    import ray

    return {n["NodeID"]: n.get("NodeManagerAddress", "?") for n in ray.nodes() if n.get("Alive")}


def _ray_failure(text: str, address: str | None) -> str:
    """Ray's refusal to start or join, in one line."""
    where = f"the Ray cluster at {address}" if address else "the local Ray instance"
    if text.startswith("Version mismatch"):  # Ray's message spreads the two versions over lines
        found = [
            line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith(("Ray:", "Python:"))
        ]
        if len(found) == 4:
            return (
                f"{where} runs Ray {found[0]} on Python {found[1]}, this machine Ray {found[2]} on Python "
                f"{found[3]}: every node and the driver need the same Ray and Python versions"
            )
    return f"cannot start or join {where}: {text.strip().splitlines()[0][:200] if text.strip() else 'no reason given'}"


def make_backend(
    name: str, address: str | None = None, jobs: int = 1, verbose: bool = False, notice: Callable | None = None
):
    """The backend `name` ("local" or "ray"); `notice(line)` hears what the user should know as
    it happens (a lost node)."""
    if name == "local":
        if address:
            raise CaptchalabError("`address` applies to the ray `backend`")
        return LocalBackend(jobs, verbose=verbose)
    if name == "ray":
        return RayBackend(address, verbose=verbose, notice=notice)
    raise CaptchalabError(f"unknown backend {name!r}; use local or ray")
