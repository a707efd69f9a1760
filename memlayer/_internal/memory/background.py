"""Background memory: the worker that applies queued extraction jobs, and the handles callers wait on.

A job is queued in the store (`memlayer._internal.db.jobs`) with the run that produced it; a `JobWorker` claims
ready jobs one at a time, runs the extraction (one LLM call) and commits its changes together with
the job's done mark. A failure is retried with exponential backoff and parked (``dead``) after
``JobSettings.max_attempts``; nothing is dropped. The worker runs in a daemon thread of this process
(started by the first queued job) or as ``memlayer worker`` (`JobWorker.drain` / `JobWorker.serve`).

Read-your-writes: the jobs this process queued are tracked per user, so a read of that user's
memories can wait (bounded by ``read_wait``) until each has had its attempt. At normal exit the thread
drains the jobs this process queued, for at most ``drain_timeout`` seconds; what is left stays queued
in the store for the next worker.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from .. import checks, clock
from ..db import jobs as job_sql
from ..db.store import Store
from ..errors import MemlayerError, StorageError
from ..records import ExtractionResult

__all__ = ["JobSettings", "JobWorker", "MemoryJob"]

_log = logging.getLogger("memlayer")

Apply = Callable[[job_sql.ClaimedJob, "Probe"], ExtractionResult]
Probe = Callable[[str], None]  # called at each step of a job, by name: where fault-injection tests kill
_UNTRACKED_KEPT = 1024  # outcomes of jobs settled before anyone tracked them (see `JobWorker.track`)


def _no_probe(step: str) -> None:
    pass


@dataclass(frozen=True)
class JobSettings:
    """How background memory behaves (``MemoryManager(jobs=JobSettings(...))``); seconds throughout.

    ``read_wait``: how long a read of a user's memories waits for the jobs this process queued for that
    user (0: never wait, read what is committed). ``lease``: how long a claimed job is a worker's before
    another may take it (longer than the slowest extraction). ``max_attempts``: attempts before a job
    is parked. ``retry_delay``: the first backoff, doubled after each failure up to ``max_retry_delay``.
    ``poll``: how often an idle worker looks for jobs queued by other processes. ``drain_timeout``: how
    long normal exit waits for this process's queued jobs.
    """

    read_wait: float = 60.0
    lease: float = 300.0
    max_attempts: int = 5
    retry_delay: float = 1.0
    max_retry_delay: float = 60.0
    poll: float = 1.0
    drain_timeout: float = 30.0

    def __post_init__(self) -> None:
        for name in ("read_wait", "lease", "retry_delay", "max_retry_delay", "poll", "drain_timeout"):
            checks.seconds(f"JobSettings.{name}", getattr(self, name))
        checks.count("JobSettings.max_attempts", self.max_attempts, minimum=1)

    def backoff(self, attempts: int) -> float:
        return float(min(self.max_retry_delay, self.retry_delay * 2 ** max(0, attempts - 1)))


@dataclass
class _Tracked:
    user_id: str
    settled: threading.Event = field(default_factory=threading.Event)
    result: ExtractionResult | None = None
    error: str | None = None


class MemoryJob:
    """A queued extraction: ``job.wait(timeout)``, then ``job.result`` (or ``job.error``)."""

    def __init__(self, job_id: str, user_id: str, tracked: _Tracked) -> None:
        self.job_id, self.user_id, self._tracked = job_id, user_id, tracked

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has had its attempt (applied, or failed and queued again); False on timeout."""
        return self._tracked.settled.wait(timeout)

    @property
    def done(self) -> bool:
        return self._tracked.result is not None

    @property
    def result(self) -> ExtractionResult | None:
        """The changes the job applied, once it has; None before, or when its attempt failed."""
        return self._tracked.result

    @property
    def error(self) -> str | None:
        """Why the last attempt failed (the job is retried, or parked after its last attempt)."""
        return self._tracked.error

    def __repr__(self) -> str:
        state = "done" if self.done else "failed" if self.error else "queued"
        return f"MemoryJob({self.job_id!r}, user_id={self.user_id!r}, {state})"


class JobWorker:
    """Claims and applies the store's ready jobs; owned by one `MemoryManager` (see the module docstring)."""

    def __init__(self, db: Store, apply: Apply, settings: JobSettings, *, probe: Probe = _no_probe) -> None:
        self.db, self.settings, self._apply, self._probe = db, settings, apply, probe
        self._tracked: dict[str, _Tracked] = {}
        self._untracked: OrderedDict[str, tuple[ExtractionResult | None, str | None]] = OrderedDict()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._kicked = False  # a job was tracked since the loop last looked: do not sleep before looking again
        self._recovered = False
        self.token = clock.new_id()  # names this worker's claims

    # -- queueing and waiting ---------------------------------------------------------------------

    def track(self, job_id: str, user_id: str) -> MemoryJob:
        """Follow a job this process queued (after its transaction committed), and start the thread."""
        tracked = _Tracked(user_id)
        with self._wake:
            # This thread may have taken the job between its commit and this call: its outcome waits here.
            early = self._untracked.pop(job_id, None)
            if early is not None:
                tracked.result, tracked.error = early
                tracked.settled.set()
            if tracked.result is None:  # still to be applied (or retried): its outcome is awaited
                self._tracked[job_id] = tracked
            self._kicked = True
            self._wake.notify_all()
        self.start()
        return MemoryJob(job_id, user_id, tracked)

    def wait_user(self, user_id: str, timeout: float | None) -> bool:
        """Wait until every job this process queued for ``user_id`` has had its attempt; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for tracked in self._unsettled(user_id):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not tracked.settled.wait(left):
                return False
        return True

    def pending(self) -> int:
        """How many jobs this process queued that have not had their attempt yet."""
        return len(self._unsettled(None))

    def _unsettled(self, user_id: str | None) -> list[_Tracked]:
        with self._wake:
            return [t for t in self._tracked.values() if not t.settled.is_set() and user_id in (None, t.user_id)]

    # -- the loop ---------------------------------------------------------------------------------

    def start(self) -> None:
        with self._wake:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(target=self.serve, name="memlayer-jobs", daemon=True)
            self._thread.start()
        atexit.register(self.stop)

    def serve(self) -> None:
        """Apply ready jobs until `stop`; between jobs, sleep until woken or ``poll`` seconds pass."""
        while not self._stopping:
            try:
                worked = self.step()
            except StorageError as exc:  # the store was closed or is unreachable: jobs stay queued in it
                left = self.pending()
                log = _log.warning if left else _log.debug
                log("memory jobs stopped (%d queued by this process stay in the store): %s", left, exc)
                return
            if not worked:
                with self._wake:
                    # A job tracked after `step` found none and before this lock would find no one waiting to
                    # be notified: the flag keeps that wake-up, so the job is not left for a whole ``poll``.
                    if not self._stopping and not self._kicked:
                        self._wake.wait(self.settings.poll)
                    self._kicked = False

    def drain(self, timeout: float | None = None) -> int:
        """Apply ready jobs until none is left (or ``timeout`` passes); returns how many were taken."""
        deadline = None if timeout is None else time.monotonic() + timeout
        taken = 0
        while deadline is None or time.monotonic() < deadline:
            if not self.step():
                break
            taken += 1
        return taken

    def stop(self, timeout: float | None = None) -> None:
        """Let this process's queued jobs finish (at most ``drain_timeout``), then end the loop."""
        atexit.unregister(self.stop)
        thread = self._thread
        deadline = time.monotonic() + (self.settings.drain_timeout if timeout is None else timeout)
        with self._wake:
            while thread is not None and thread.is_alive() and self.pending() and time.monotonic() < deadline:
                self._wake.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            self._stopping = True
            self._wake.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()) + 0.1)

    def step(self) -> bool:
        """Claim one ready job and apply it; False when no job is ready."""
        now = job_sql.utc_now()
        with self.db.transaction() as conn:
            if not self._recovered and self.db.dialect == "duckdb":
                # The one process holding the file holds no other claim: a running job was left by one that died.
                job_sql.release_running(conn)
            self._recovered = True
            job = job_sql.claim(conn, self.token, timedelta(seconds=self.settings.lease), now)
        if job is None:
            return False
        self._probe("claimed")
        try:
            result = self._apply(job, self._probe)
        except Exception as exc:  # every failure is recorded on the job: retried or parked, never lost
            self._failed(job, exc)
        else:
            self._probe("committed")
            self._settle(job.job_id, result, None)
        return True

    def _failed(self, job: job_sql.ClaimedJob, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, MemlayerError) else str(exc)
        parked = job.attempts >= self.settings.max_attempts
        retry_at = None if parked else job_sql.utc_now() + timedelta(seconds=self.settings.backoff(job.attempts))
        with self.db.transaction() as conn:
            recorded = job_sql.fail(conn, job, error, retry_at, job_sql.utc_now())
        if recorded:
            verb = "parked" if parked else "will retry"
            _log.warning("memory job %s failed (attempt %d, %s): %s", job.job_id, job.attempts, verb, error)
        self._settle(job.job_id, None, error)

    def _settle(self, job_id: str, result: ExtractionResult | None, error: str | None) -> None:
        with self._wake:
            tracked = self._tracked.get(job_id)
            if tracked is None:  # another process's job, or one of ours whose `track` has not run yet
                self._untracked[job_id] = (result, error)
                while len(self._untracked) > _UNTRACKED_KEPT:
                    self._untracked.popitem(last=False)
            else:
                tracked.result, tracked.error = result, error
                if result is not None:
                    del self._tracked[job_id]
                tracked.settled.set()
            self._wake.notify_all()
