"""Many runs at once: jobs handed to worker processes or to a Dask cluster, each outcome as it finishes.

K-fold cross-validation and a sweep are loops around a run. Each run is a
*job*: a small picklable value (a frozen dataclass of settings and paths)
that a module-level function turns into a result. This module runs a list
of jobs somewhere and yields their outcomes as they finish; it knows
nothing about training. Where they run is a :class:`Workers`:

* ``Workers()``: here, one after another (``--jobs 1``, the default);
* ``Workers(jobs=N)``: in N worker processes on this machine, an existing
  pool (:class:`concurrent.futures.ProcessPoolExecutor`) started with
  ``spawn``: numba's OpenMP threads do not survive a ``fork``;
* ``Workers(scheduler="tcp://host:8786")``: on the workers of a Dask
  distributed cluster, through :meth:`distributed.Client.get_executor`
  (the optional ``[cluster]`` extra).

A job learns where it runs from its :class:`Context`: how many threads its
kernels may use (the CPUs shared out, so that jobs x threads fit the
machine), a name for its error messages, ``say`` for its progress lines
(they reach the parent's log as whole lines, whichever process wrote them)
and ``stopped``, true once the parent asked every job to stop.

Ctrl-C. In a terminal it reaches every process of the group: a worker
process that is running a job gets it in the job (a training run saves its
last epoch and stops, as a single run does), an idle worker ignores it, and
the parent stops waiting. The parent then sets the stop flag, so jobs that
did not see the signal (on a Dask worker, or when only the parent was
signalled) stop at their next epoch, and jobs that had not started end at
once; it waits for all of them before it goes on. So when the parent says
how to resume, every job has saved what it could.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import queue
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from numpy_cnn.cpus import available_cpus
from numpy_cnn.errors import UserError

__all__ = ["Context", "Outcome", "Stopped", "Workers", "thread_budget", "NEEDS_DASK"]

NEEDS_DASK = '--scheduler needs Dask: pip install -e ".[cluster]"'
POLL_SECONDS = 0.2   # how often the parent passes on the workers' progress lines while it waits


@dataclass(frozen=True)
class Context:
    """What a job is told about the place it runs in.

    ``threads``: the threads its kernels may use (``None``: leave them as they are);
    ``where``: a name for messages (``"worker process 4711"``, ``"Dask worker tcp://10.0.0.7:39113
    on host node7"``); ``say``: sends one progress line to the parent's log (``None``: quiet);
    ``stopped``: true once the parent asked every job to stop (check it now and then);
    ``fixed_threads``: the user fixed the count (``--threads``), so no governor may lower it.
    """

    threads: int | None
    where: str
    say: Callable[[str], None] | None
    stopped: Callable[[], bool]
    fixed_threads: bool = False


class Stopped(Exception):
    """A job that was asked to stop before it began (the parent had been interrupted)."""


class Outcome(NamedTuple):
    """A finished job: its ``result``, or the ``error`` it raised."""

    job: Any
    result: Any = None
    error: BaseException | None = None


JobFunction = Callable[[Any, Context], Any]


def thread_budget(jobs: int, threads: int | None = None, cpus: int | None = None) -> int:
    """Threads per job when ``jobs`` run at once: ``threads`` if given, else the CPUs shared out (at least 1).

    ``cpus`` defaults to :func:`numpy_cnn.cpus.available_cpus`, capped by ``NUMBA_NUM_THREADS``
    (numba's pool, the most a process can use). Raises the one-line :class:`UserError` of a
    budget that does not fit: ``jobs x threads`` above the CPUs this process may use.
    """
    if jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    available = available_cpus() if cpus is None else cpus
    per_job = threads if threads is not None else max(1, _numba_pool(available) // jobs)
    if jobs * per_job > available:
        what = f"--threads {threads}" if threads is not None else "1 thread"
        raise UserError(f"--jobs {jobs} with {what} each needs {jobs * per_job} CPUs, but this process may use "
                        f"{available}; lower --jobs{' or --threads' if threads is not None else ''}")
    return per_job


def _numba_pool(cpus: int) -> int:
    """``NUMBA_NUM_THREADS`` (set by the command line to the CPUs available, unless the user set it)."""
    try:
        return max(1, min(cpus, int(os.environ.get("NUMBA_NUM_THREADS", cpus))))
    except ValueError:
        return cpus


@dataclass(frozen=True)
class Workers:
    """Where jobs run: here (``jobs=1``), in ``jobs`` local worker processes, or on a Dask cluster.

    Built from ``--jobs``, ``--threads`` and ``--scheduler``, and checked as it is built (before
    anything is written): a thread budget that does not fit, or ``--scheduler`` without Dask, is
    a one-line :class:`UserError`.
    """

    jobs: int = 1
    threads: int | None = None
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.scheduler is not None:
            if self.jobs != 1:
                raise UserError("--jobs sizes a pool on this machine; with --scheduler the cluster's workers "
                                "decide how many jobs run at once: drop --jobs")
            if self.threads is not None and self.threads < 1:
                raise UserError(f"--threads must be >= 1, got {self.threads}")
            _import_distributed()
        elif self.jobs > 1:
            thread_budget(self.jobs, self.threads)
        elif self.jobs < 1:
            raise UserError(f"--jobs must be >= 1, got {self.jobs}")

    @property
    def in_process(self) -> bool:
        return self.scheduler is None and self.jobs == 1

    def start(self, n_jobs: int, log: Callable[[str], None] | None) -> _Runner:
        """A runner for ``n_jobs`` jobs (a context manager); the lines the jobs say go to ``log``."""
        if self.scheduler is not None:
            return _DaskCluster(self.scheduler, self.threads, log)
        if self.jobs == 1:
            return _InProcess(log, self.threads is not None)
        workers = max(1, min(self.jobs, n_jobs))
        return _LocalWorkers(workers, thread_budget(workers, self.threads), self.threads is not None, log)


def run_jobs(fn: JobFunction, jobs: Iterable, runner: _Runner) -> Iterator[Outcome]:
    """Run ``fn(job, context)`` for every job on ``runner``; yield each :class:`Outcome` as it finishes.

    A job's exception is yielded, not raised: the caller decides whether to go on. Close the
    generator (``contextlib.closing``) when leaving early: any job still running is then asked
    to stop, and waited for, before the caller goes on. Interrupted in the parent (Ctrl-C), the
    same happens, and the ``KeyboardInterrupt`` goes on to the caller.
    """
    return runner.outcomes(fn, list(jobs))


# -- here, one job after another ---------------------------------------------------

class _Runner:
    """Where the jobs of one :func:`run_jobs` call run; a context manager that cleans up after them."""

    def outcomes(self, fn: JobFunction, jobs: list) -> Iterator[Outcome]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the workers (after every job has ended)."""

    def __enter__(self) -> _Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _InProcess(_Runner):
    """This process, one job after another: Ctrl-C reaches the job itself."""

    def __init__(self, log: Callable[[str], None] | None, fixed_threads: bool = False) -> None:
        self.context = Context(None, "this process", log, lambda: False, fixed_threads)

    def outcomes(self, fn: JobFunction, jobs: list) -> Iterator[Outcome]:
        for job in jobs:
            try:
                result = fn(job, self.context)
            except Exception as exc:   # a KeyboardInterrupt outside any job goes straight to the caller
                yield Outcome(job, error=exc)
            else:
                yield Outcome(job, result)


# -- an executor: local worker processes or a Dask cluster -------------------------

class _Executor(_Runner):
    """Jobs submitted to a :class:`concurrent.futures.Executor`; the parent relays their lines while it waits."""

    def __init__(self, log: Callable[[str], None] | None) -> None:
        self.log = log

    def _submit(self, fn: JobFunction, job: Any) -> cf.Future:
        raise NotImplementedError

    def _stop(self) -> None:
        """Ask every running job to stop at its next check, and every waiting one not to start."""
        raise NotImplementedError

    def _lines(self) -> Iterator[str]:
        """The progress lines that have arrived since the last call."""
        raise NotImplementedError

    def _relay(self) -> None:
        for line in self._lines():
            if self.log:
                self.log(line)

    def outcomes(self, fn: JobFunction, jobs: list) -> Iterator[Outcome]:
        order: dict[cf.Future, int] = {}
        pending: set[cf.Future] = set()
        try:
            for i, job in enumerate(jobs):
                future = self._submit(fn, job)
                order[future] = i
                pending.add(future)
            while pending:
                done, pending = cf.wait(pending, timeout=POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
                self._relay()
                for future in sorted(done, key=order.get):
                    yield _outcome(jobs[order[future]], future)
        finally:
            if pending:   # Ctrl-C, or the caller left at an error: every job saves what it has, then ends
                self._stop()
                while pending:
                    _, pending = cf.wait(pending, timeout=POLL_SECONDS)
                    self._relay()
            self._relay()


def _outcome(job: Any, future: cf.Future) -> Outcome:
    if future.cancelled():
        return Outcome(job, error=Stopped("cancelled before it began"))
    error = future.exception()
    return Outcome(job, error=error) if error is not None else Outcome(job, future.result())


class _LocalWorkers(_Executor):
    """``workers`` processes on this machine, each running one job at a time on ``threads`` threads.

    A process pool started with ``spawn``; each worker learns the lines' queue and the stop flag
    when it starts (multiprocessing shares them by inheritance only).
    """

    def __init__(self, workers: int, threads: int, fixed_threads: bool, log: Callable[[str], None] | None) -> None:
        super().__init__(log)
        context = multiprocessing.get_context("spawn")
        self.lines = context.SimpleQueue() if log else None
        self.stop = context.Event()
        self.executor = cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_local_worker,
                                               initargs=(threads, fixed_threads, self.lines, self.stop))

    def _submit(self, fn: JobFunction, job: Any) -> cf.Future:
        return self.executor.submit(_run_in_local_worker, fn, job)

    def _stop(self) -> None:
        self.stop.set()

    def _lines(self) -> Iterator[str]:
        return iter(()) if self.lines is None else _drain(self.lines)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


_LOCAL: Context | None = None   # in a local worker process: its context, set when it starts


def _start_local_worker(threads: int, fixed_threads: bool, lines, stop) -> None:
    """A worker process's first act: ignore Ctrl-C while idle (the job running gets it), keep its context."""
    global _LOCAL
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    say = None if lines is None else (lambda line: _put_whole(lines, line))
    _LOCAL = Context(threads, f"worker process {os.getpid()}", say, stop.is_set, fixed_threads)


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Ctrl-C waits until the block ends, then acts as usual.

    A queue message is a length, then the bytes: a KeyboardInterrupt between the two, in the
    worker that writes it or in the parent that reads it, leaves the queue out of step for good.
    The handler is swapped, not the signal blocked: the kernel may hand a process's SIGINT to any
    of its threads (the pool's own, numba's), and Python would still raise in the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield   # Python raises KeyboardInterrupt in the main thread only
        return
    came: list[int] = []
    before = signal.signal(signal.SIGINT, lambda signum, frame: came.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        if came:
            signal.raise_signal(signal.SIGINT)   # now, to the handler that was there


def _put_whole(lines, line: str) -> None:
    """One line into the queue, whole."""
    with _ctrl_c_held():
        lines.put(line)


def _drain(lines) -> Iterator[str]:
    """The lines in the queue now, each read whole (Ctrl-C may end the loop between two)."""
    while not lines.empty():
        with _ctrl_c_held():
            line = lines.get()
        yield line


def _run_in_local_worker(fn: JobFunction, job: Any) -> Any:
    """Run one job in a local worker process, with Ctrl-C reaching it as it would a single run."""
    if _LOCAL.stopped():
        raise Stopped("asked to stop before it began")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return fn(job, _LOCAL)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# -- a Dask cluster ------------------------------------------------------------------

def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise UserError(NEEDS_DASK) from None
    return distributed


class _DaskCluster(_Executor):
    """The workers of the Dask scheduler at ``address``.

    Lines come back as Dask events (``Worker.log_event``, ``Client.subscribe_topic``); the stop
    flag is a :class:`distributed.Event`. The executor is made with ``pure=False``: two jobs
    with equal arguments are two runs, not one result shared.
    """

    def __init__(self, address: str, threads: int | None, log: Callable[[str], None] | None) -> None:
        super().__init__(log)
        distributed = _import_distributed()
        try:
            self.client = distributed.Client(address, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserError(f"--scheduler {address}: no Dask scheduler answered ({exc}); start one with "
                            "dask scheduler, and workers with dask worker ADDRESS") from None
        name = f"numpy_cnn-{uuid.uuid4().hex}"
        self.stop = distributed.Event(f"{name}-stop", client=self.client)
        self.topic = f"{name}-lines" if log else None
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        if self.topic:
            self.client.subscribe_topic(self.topic, lambda event: self.queue.put(event[1]))
        self.threads = threads
        self.slots = _slots_per_host(self.client.scheduler_info()["workers"])
        self.executor = self.client.get_executor(pure=False)

    def _submit(self, fn: JobFunction, job: Any) -> cf.Future:
        return self.executor.submit(_run_on_dask_worker, fn, job, self.threads, self.slots, self.topic,
                                    self.stop.name)

    def _stop(self) -> None:
        self.stop.set()

    def _lines(self) -> Iterator[str]:
        while True:
            try:
                yield self.queue.get_nowait()
            except queue.Empty:
                return

    def close(self) -> None:
        try:
            self.executor.shutdown(wait=True)
            if self.topic:
                self.client.unsubscribe_topic(self.topic)
        finally:
            self.client.close()


def _slots_per_host(workers: dict) -> dict[str, int]:
    """Each worker's address -> the task slots (``nthreads``) of all workers on its host: a job there
    gets the host's CPUs divided by them."""
    per_host: dict[str, int] = {}
    for info in workers.values():
        per_host[info["host"]] = per_host.get(info["host"], 0) + int(info.get("nthreads", 1))
    return {address: per_host[info["host"]] for address, info in workers.items()}


def _run_on_dask_worker(fn: JobFunction, job: Any, threads: int | None, slots: dict[str, int],
                        topic: str | None, stop_name: str) -> Any:
    """Run one job on a Dask worker: threads from ``--threads``, else the host's CPUs over its task slots."""
    from distributed import Event, get_worker

    worker = get_worker()
    stop = Event(stop_name)
    if stop.is_set():
        raise Stopped("asked to stop before it began")
    share = threads or max(1, available_cpus() // slots.get(worker.address, 1))
    say = None if topic is None else (lambda line: worker.log_event(topic, line))
    return fn(job, Context(share, f"Dask worker {worker.address} on host {socket.gethostname()}", say, stop.is_set,
                           threads is not None))
