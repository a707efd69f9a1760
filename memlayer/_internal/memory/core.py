"""The state every part of `MemoryManager` shares: its model, store, retrieval and options, and its typed calls.

`MemoryManager` is one class built from parts: this core, `memory.edits` (direct edits and
``optimize_memories``), `memory.reads` (reads and search), and `memory.manager` (extraction).
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from .. import checks, clock, flow
from ..db import DuckDb
from ..db import memories as memory_sql
from ..db.changes import Provenance
from ..db.store import Store
from ..errors import ConfigError
from ..llm.litellm import start_import
from ..llm.options import model_options
from ..llm.road import labelled
from ..llm.spec import Mode, ModelSpec, parse_model
from ..llm.typed import TypedReply, typed_call
from ..llm.usage import LLMCallError
from ..search.embedders import Embedder, EmbedderOption
from ..search.retrieval import Retrieval
from .background import JobSettings, JobWorker
from .pipeline import log_failed_call

__all__ = ["ManagerCore"]

_log = logging.getLogger("memlayer")


class ManagerCore:
    """`MemoryManager`'s state and options (see `MemoryManager`)."""

    def __init__(
        self,
        model: str | ModelSpec | None = None,
        db: Store | None = None,
        *,
        system_message: str | None = None,
        memory_capture_instructions: str | None = None,
        additional_instructions: str | Sequence[str] | None = None,
        add_memories: bool = True,
        update_memories: bool = True,
        delete_memories: bool = True,
        clear_memories: bool = False,
        debug_mode: bool = False,
        id: str | None = None,
        name: str | None = None,
        owner_id: str | None = None,
        owner_type: str | None = None,
        api_base: str | None = None,
        api_key: str | None = None,
        mode: Mode | None = None,
        max_retries: int = 2,
        provider_retries: int = 2,
        candidate_limit: int = 30,
        embedder: EmbedderOption = "auto",
        jobs: JobSettings | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        **litellm_params: Any,
    ) -> None:
        """Agno's options (README, "Coming from Agno"): ``system_message`` replaces the rules of the extraction
        prompt; ``memory_capture_instructions`` come first among the instructions; ``add_memories``,
        ``update_memories`` and ``delete_memories`` set which operations the reply's schema admits (all three
        by default: Agno's ``delete_memories=False`` would keep retracted facts current); ``debug_mode`` logs
        each extraction. ``clear_memories`` (the reply has no "clear" operation: a task to forget everything
        deletes each memory), ``id``, ``name``, ``owner_id`` and ``owner_type`` are kept as attributes only.

        ``jobs``: how background extraction behaves (`JobSettings`: read wait, lease, retries, drain at exit).

        Only LiteLLM completion parameters (``temperature=0.2``) and ``model_kwargs={...}`` are sent to the
        provider; any other keyword raises `ConfigError` (`memlayer._internal.llm.options`).
        """
        extra = model_options("MemoryManager", litellm_params, model_kwargs, inspect.signature(ManagerCore).parameters)
        self.model = (
            None if model is None else parse_model(model, api_base=api_base, api_key=api_key, mode=mode, **extra)
        )
        if self.model is not None:
            start_import()  # LiteLLM and Instructor, in a background thread: the first request finds them
        if db is not None and not isinstance(db, Store):
            raise ConfigError(f"db must be a DuckDb or a PostgresDb, e.g. DuckDb('agents.duckdb'), got {db!r}")
        # Set once: given here, joined by an Agent (`join`), or an in-memory one on first use.
        self._db: Store | None = db
        self._db_lock = threading.Lock()
        self.system_message = None if system_message is None else checks.text("system_message", system_message)
        self.memory_capture_instructions = checks.instructions(memory_capture_instructions)
        self.additional_instructions = checks.instructions(additional_instructions)
        switches = {"add": add_memories, "update": update_memories, "delete": delete_memories}
        self.allowed_operations = tuple(op for op, on in switches.items() if on)
        if not self.allowed_operations:
            raise ConfigError("add_memories, update_memories and delete_memories are all False: nothing could change")
        self.add_memories, self.update_memories, self.delete_memories = add_memories, update_memories, delete_memories
        self.clear_memories = clear_memories
        self.debug_mode = debug_mode
        if debug_mode:
            _debug_logging()
        self.id, self.name, self.owner_id, self.owner_type = id, name, owner_id, owner_type
        self.max_retries = checks.count("max_retries", max_retries, minimum=0)
        self.provider_retries = checks.count("provider_retries", provider_retries, minimum=0)
        self.candidate_limit = checks.count("candidate_limit", candidate_limit, minimum=1)
        # "auto": the offline embedder when memlayer-ai[local] is installed, else keyword search only.
        self._retrieval = Retrieval(embedder)
        if jobs is not None and not isinstance(jobs, JobSettings):
            raise ConfigError(f"jobs must be a JobSettings(...), got {jobs!r}")
        self.job_settings = jobs or JobSettings()
        self._worker: JobWorker | None = None  # made by the first background job (`MemoryManager.job_worker`)
        self._worker_lock = threading.Lock()

    @property
    def db(self) -> Store:
        """The store; one owner, so retrieval, reads and writes always reach the same file."""
        with self._db_lock:
            if self._db is None:
                self._db = DuckDb()
            return self._db

    def join(self, db: Store, model: ModelSpec) -> None:
        """Fill in what this manager was made without, from the `Agent` it is given to.

        The db is set once: a manager with none (and not yet used) joins ``db``; one with another db is
        refused. ``model`` is used only when the manager has none. Nothing the caller set is replaced.
        """
        with self._db_lock:
            if self._db is None:
                self._db = db
            elif self._db is not db:
                raise ConfigError(
                    "the agent's db and its memory_manager's db are different stores; pass the same one "
                    "to both so sessions and memories live in one file"
                )
            if self.model is None:
                self.model = model

    def _await_jobs(self, user: str) -> None:
        """Read-your-writes: wait (at most ``read_wait``) for the jobs this process queued for ``user``."""
        worker = self._worker
        if worker is not None and self.job_settings.read_wait > 0:
            if not worker.wait_user(user, self.job_settings.read_wait):
                _log.warning("read %r's memories before their queued extraction finished", user)

    @property
    def embedder(self) -> Embedder | None:
        """What embeds memories and queries; None when search is by keywords and recency only."""
        return self._retrieval.embedder

    def _require_model(self) -> ModelSpec:
        if self.model is None:
            raise ConfigError("this MemoryManager has no model; pass model='provider:model' to extract memories")
        return self.model

    def _typed(
        self, messages: list[dict[str, str]], response_model: type[Any], user: str, purpose: str
    ) -> flow.Flow[TypedReply]:
        try:
            call = typed_call(
                self._require_model(),
                messages,
                response_model,
                purpose=purpose,
                retries=self.max_retries,
                provider_retries=self.provider_retries,
            )
            reply: TypedReply = yield from labelled(call, user_id=user, operation=purpose)
        except LLMCallError as exc:
            yield flow.Blocking(log_failed_call, self.db, exc, user, None, None)
            raise
        return reply

    def _log_usage(self, reply: TypedReply, user: str, prompt_version: str) -> None:
        origin = Provenance(
            user, reply.usage.purpose, clock.now(), call_id=reply.usage.call_id, model=reply.usage.model
        )
        with self.db.transaction() as conn:
            memory_sql.insert_llm_call(conn, reply.usage, origin, prompt_version=prompt_version)


def _debug_logging() -> None:
    """Agno's ``debug_mode``: memlayer's log at DEBUG, printed to stderr unless the app handles it already."""
    logger = logging.getLogger("memlayer")
    logger.setLevel(logging.DEBUG)
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler())
