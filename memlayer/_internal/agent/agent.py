"""`Agent`: a chat model with tools, session history and long-term memory of each user.

A run: read the session's recent history and the user's relevant memories, call the model in a
bounded tool loop, then store the run, its messages and its LLM calls in one transaction. Memory is
updated in one of two ways, never both: the model decides, through a memory tool
(``enable_agentic_memory``), or one extraction runs over every run (``update_memory_on_run``).
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal, TextIO

from .. import checks, clock, flow
from ..db import sessions
from ..db.jobs import NewJob
from ..db.store import Store
from ..errors import ConfigError, MemlayerError
from ..llm import chat, tracing
from ..llm.litellm import start_import
from ..llm.options import model_options
from ..llm.road import bounded, labelled
from ..llm.spec import Mode, ModelSpec, parse_model
from ..llm.usage import LLMCallError
from ..memory.manager import MemoryManager
from ..records import ChatMessage, Memory, RunResponse
from .memory_tools import AGENTIC_MEMORY_TOOL
from .prompt import agent_instructions, agent_system_prompt
from .run import RunState, RunStream, Sink
from .tools import RunContext, Tool, UnknownTool, as_tools
from .wiring import ToolItem, always_on, for_extraction, slug, toolkit_db, wire_storage

__all__ = ["Agent", "RunStream"]

_log = logging.getLogger("memlayer")
MemoryMode = Literal["background", "foreground"]


class Agent:
    """A chat agent that remembers its users.

    ``Agent(model="openai:gpt-4o", db=db, memory_manager=manager, enable_agentic_memory=True,
    add_history_to_context=True, num_history_runs=5)``, then
    ``agent.print_response("I prefer Python", user_id="ana@example.com", stream=True)``.
    """

    def __init__(
        self,
        model: str | ModelSpec | None = None,
        *,
        name: str | None = None,
        agent_id: str | None = None,
        db: Store | None = None,
        memory_manager: MemoryManager | None = None,
        instructions: str | Sequence[str] | None = None,
        tools: Sequence[ToolItem] | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        enable_agentic_memory: bool = False,
        update_memory_on_run: bool | None = None,
        memory_mode: MemoryMode = "background",
        enable_user_memories: bool | None = None,
        add_memories_to_context: bool | None = None,
        num_memories_in_context: int = 10,
        add_history_to_context: bool = False,
        num_history_runs: int = 3,
        max_tool_rounds: int = 5,
        run_timeout: float | None = None,
        tool_mode: chat.ToolMode | None = None,
        description: str | None = None,
        expected_output: str | None = None,
        additional_context: str | None = None,
        markdown: bool = False,
        id: str | None = None,
        debug_mode: bool = False,
        telemetry: bool = False,
        monitoring: bool = False,
        api_base: str | None = None,
        api_key: str | None = None,
        mode: Mode | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        **litellm_params: Any,
    ) -> None:
        """Agno's prompt options build the system prompt as in Agno: ``description`` first, then
        ``instructions``, ``expected_output``, ``additional_context``, and ``markdown=True`` asks for
        Markdown. ``id`` is ``agent_id``; ``debug_mode`` logs at DEBUG; ``telemetry`` and ``monitoring``
        are accepted and ignored (memlayer sends no telemetry anywhere).

        ``memory_mode`` (always-on memory): ``"background"`` queues each run's extraction with the run and
        returns as soon as the answer is stored (reads of the user's memories wait for it, see `JobSettings`);
        ``"foreground"`` extracts before the run returns, with the changes in ``response.memory_changes``.

        Only LiteLLM completion parameters (``temperature=0.2``) and ``model_kwargs={...}`` are sent to the
        provider; any other keyword raises `ConfigError` (`memlayer._internal.llm.options`). ``timeout=30`` bounds
        each model call (its retries included); ``run_timeout=120`` bounds every model call of a run together.
        """
        extra = model_options("Agent", litellm_params, model_kwargs, inspect.signature(Agent).parameters)
        if model is None:
            raise ConfigError("Agent needs a model, e.g. Agent(model='openai:gpt-4o')")
        self.model = parse_model(model, api_base=api_base, api_key=api_key, mode=mode, **extra)
        start_import()  # LiteLLM and Instructor, in a background thread: the first run finds them
        self.name = name
        if id is not None and agent_id is not None and id != agent_id:
            raise ConfigError("id and agent_id are the same option (Agno's name and memlayer's); set only one")
        agent_id = agent_id or id
        self.agent_id = agent_id or (slug(name) if name else None)
        self.description = description
        self.markdown, self.debug_mode, self.telemetry, self.monitoring = markdown, debug_mode, telemetry, monitoring
        if debug_mode:
            logging.getLogger("memlayer").setLevel(logging.DEBUG)
        self.instructions = agent_instructions(description, instructions, expected_output, additional_context, markdown)
        self.update_memory_on_run = always_on(update_memory_on_run, enable_user_memories)
        self.enable_agentic_memory = enable_agentic_memory
        self.memory_mode = checks.one_of("memory_mode", memory_mode, ("background", "foreground"))
        if enable_agentic_memory and self.update_memory_on_run:
            raise ConfigError(
                "choose one way to update memory: enable_agentic_memory=True (the model decides, with a "
                "tool) or update_memory_on_run=True (one extraction after every run), not both"
            )
        if num_history_runs < 0 or num_memories_in_context < 0 or max_tool_rounds < 0:
            raise ConfigError("num_history_runs, num_memories_in_context and max_tool_rounds must be >= 0")
        self.tools = as_tools([*(tools or []), *([AGENTIC_MEMORY_TOOL] if enable_agentic_memory else [])])
        uses_memory = enable_agentic_memory or self.update_memory_on_run or bool(add_memories_to_context)
        uses_memory = uses_memory or memory_manager is not None or any(t.wants_context for t in self.tools)
        self.db, self.memory_manager = wire_storage(self.model, toolkit_db(db, tools), memory_manager, uses_memory)
        self.add_memories_to_context = (
            self.memory_manager is not None if add_memories_to_context is None else add_memories_to_context
        )
        self.num_memories_in_context = num_memories_in_context
        self.add_history_to_context = add_history_to_context
        self.num_history_runs = num_history_runs
        self.max_tool_rounds = max_tool_rounds
        self.run_timeout = checks.optional_seconds("run_timeout", run_timeout)
        self.tool_mode = tool_mode or chat.default_tool_mode(self.model)
        self.user_id = user_id
        self.session_id = session_id
        self._default_sessions: dict[str, str] = {}
        self._manager_lock = threading.Lock()

    # -- runs -------------------------------------------------------------------------------------

    def _run_once(
        self, message: str, *, user_id: str | None = None, session_id: str | None = None, stream: bool = False
    ) -> flow.Flow[RunResponse]:
        """Answer one message. With ``stream=True`` the text is produced by streaming (see `run_stream`)."""
        sink = Sink(None, stream)
        with tracing.span("agent.run", operation="invoke_agent", model=self.model, user_id=user_id, stream=stream):
            yield from flow.consume(self._run(message, user_id, session_id, stream), sink.take)
        return sink.finish()

    def _print_response(
        self,
        message: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        stream: bool = True,
        file: TextIO | None = None,
    ) -> flow.Flow[RunResponse]:
        """Print the answer (token by token when streaming), then any memory changes."""
        sink = Sink(file or sys.stdout, stream)
        with tracing.span("agent.run", operation="invoke_agent", model=self.model, user_id=user_id, stream=stream):
            yield from flow.consume(self._run(message, user_id, session_id, stream), sink.take)
        return sink.finish()

    # Each written once as a flow, with two drivers (memlayer._internal.flow): in this thread, in the event loop.
    run = flow.sync_driver(_run_once, "run")
    arun = flow.async_driver(_run_once, "arun")
    print_response = flow.sync_driver(_print_response)
    aprint_response = flow.async_driver(_print_response)

    def run_stream(self, message: str, *, user_id: str | None = None, session_id: str | None = None) -> RunStream:
        """Iterate over the answer's text as the model writes it; then read ``.response``."""
        return RunStream(flow.iterate(self._run(message, user_id, session_id, True)))

    async def arun_stream(
        self, message: str, *, user_id: str | None = None, session_id: str | None = None
    ) -> AsyncIterator[str | RunResponse]:
        """Async: the answer's text as it arrives, then the `RunResponse` as the last item."""
        async for chunk in flow.aiterate(self._run(message, user_id, session_id, True)):
            yield chunk

    def _run(self, message: str, user_id: str | None, session_id: str | None, stream: bool) -> flow.Flow[None]:
        """One run, as a flow (`memlayer._internal.flow`): yields the answer's text, then the `RunResponse`."""
        yield from bounded(self._run_steps(message, user_id, session_id, stream), self.run_timeout, "run_timeout")

    def _run_steps(self, message: str, user_id: str | None, session_id: str | None, stream: bool) -> flow.Flow[None]:
        run: RunState = yield flow.Blocking(self._start, message, user_id, session_id)
        try:
            for round_no in range(self.max_tool_rounds + 1):
                tools = self._tools_for(round_no)
                step = chat.step(self.model, run.prompt_messages, tools, mode=self.tool_mode, stream=stream)
                reply = yield from labelled(step, user_id=run.ctx.user_id, operation="agent_run")
                if not run.add_reply(reply):
                    break
                results = []
                for call in reply.tool_calls:
                    text, failed = yield from self._tool(call).run(call.arguments, run.ctx)
                    results.append(run.record_tool(call, text, failed))
                self._add_results(run, reply.tool_calls, results)
        except MemlayerError as exc:
            yield flow.Blocking(self._store_failed, run, exc)
            raise
        job = run.extraction_job() if self._queues_memory() else None
        yield flow.Blocking(run.save, self.db, None, job)
        yield (yield flow.Blocking(self._finish, run, job))

    # -- the steps of a run -----------------------------------------------------------------------

    def _start(self, message: str, user_id: str | None, session_id: str | None) -> RunState:
        user = checks.user(user_id if user_id is not None else self.user_id)
        checks.text("message", message)
        given = checks.optional_text("session_id", session_id if session_id is not None else self.session_id)
        session = given or self._default_sessions.setdefault(user, clock.new_id())
        with self.db.reading() as conn:
            owner = sessions.session_owner(conn, session)
            if owner is not None and owner != user:
                raise _foreign_session(session)
            history = (
                sessions.recent_history(conn, user, session, self.num_history_runs)
                if self.add_history_to_context
                else []
            )
        memories = self._memories_for(message, user)
        ctx = RunContext(user, session, clock.new_id(), self.agent_id, self.memory_manager)
        system = agent_system_prompt(
            self.instructions, [(m.memory, m.topics) for m in memories], agentic=self.enable_agentic_memory
        )
        now = clock.now()
        with self.db.transaction() as conn:  # claimed before the model is called: see claim_session
            if not sessions.claim_session(conn, session, user, self.agent_id, now):
                raise _foreign_session(session)
        prompt: list[dict[str, Any]] = [{"role": "system", "content": system}]
        prompt.extend({"role": m.role, "content": m.content} for m in history)
        prompt.append({"role": "user", "content": message})
        user_message = ChatMessage(role="user", content=message, created_at=now)
        return RunState(ctx, str(self.model), prompt, [user_message], [m.memory_id for m in memories], now)

    def _memories_for(self, message: str, user: str) -> list[Memory]:
        if not (self.add_memories_to_context and self.memory_manager and self.num_memories_in_context):
            return []
        limit = self.num_memories_in_context
        # Few memories: all of them. Many: only those related to the message (search ranks them).
        everything = self.memory_manager.get_user_memories(user, limit=limit + 1)
        if len(everything) <= limit:
            return everything
        return self.memory_manager.search_user_memories(message, limit=limit, user_id=user)

    def _tools_for(self, round_no: int) -> list[Tool]:
        # The last round offers no tools, so the loop ends with an answer however the model behaves.
        return self.tools if round_no < self.max_tool_rounds else []

    def _tool(self, call: chat.ToolCall) -> Tool | UnknownTool:
        for candidate in self.tools:
            if candidate.name == call.name:
                return candidate
        return UnknownTool(call.name, [t.name for t in self.tools])

    def _add_results(self, run: RunState, calls: list[chat.ToolCall], results: list[str]) -> None:
        run.prompt_messages.extend(chat.tool_result_messages(self.tool_mode, calls, results))
        if len(run.calls) >= self.max_tool_rounds:
            run.stopped_early = True

    def _store_failed(self, run: RunState, exc: MemlayerError) -> None:
        # The failed call cost tokens and the user's message is history; both are kept, then re-raised.
        if isinstance(exc, LLMCallError):
            run.calls.append(exc.usage)
            run.failed_call = exc.usage.call_id
        try:
            run.save(self.db, error=str(exc) or type(exc).__name__)
        except MemlayerError as store_error:
            _log.warning("could not record the failed run %s: %s", run.ctx.run_id, store_error)

    def _queues_memory(self) -> bool:
        return self.update_memory_on_run and self.memory_manager is not None and self.memory_mode == "background"

    def _finish(self, run: RunState, job: NewJob | None) -> RunResponse:
        memory_error = "; ".join(run.ctx.memory_errors) or None
        if job is not None and self.memory_manager is not None:
            return run.response(memory_error, self.memory_manager._track_job(job))
        if self.update_memory_on_run and self.memory_manager is not None:
            memory_error = run.extract_now(self.memory_manager) or memory_error
        return run.response(memory_error)

    def wait_for_memories(self, user_id: str | None = None, *, timeout: float | None = None) -> bool:
        """Wait until the queued extractions of this process's runs for the user have had their attempt; False
        if ``timeout`` passed first. Reads wait by themselves (`JobSettings.read_wait`)."""
        return self._manager().wait_for_memories(self._user(user_id), timeout=timeout)

    await_for_memories = flow.threaded(wait_for_memories)

    # -- reads (each with its async twin; user_id defaults to the agent's) --------------------------

    def get_user_memories(
        self,
        user_id: str | None = None,
        *,
        topics: Sequence[str] | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        as_of: datetime | str | date | None = None,
    ) -> list[Memory]:
        """The user's current memories, shared by every agent on the same db."""
        return self._manager().get_user_memories(
            self._user(user_id), topics=topics, agent_id=agent_id, limit=limit, as_of=as_of
        )

    aget_user_memories = flow.threaded(get_user_memories)

    def search_user_memories(self, query: str, user_id: str | None = None, *, limit: int = 10) -> list[Memory]:
        return self._manager().search_user_memories(query, limit=limit, user_id=self._user(user_id))

    asearch_user_memories = flow.threaded(search_user_memories)

    def get_session_messages(self, session_id: str, user_id: str | None = None) -> list[ChatMessage]:
        """Every stored message of one of the user's sessions, tool calls included, oldest first."""
        user, session = self._user(user_id), checks.text("session_id", session_id)
        with self.db.reading() as conn:
            return sessions.list_messages(conn, user, session)

    aget_session_messages = flow.threaded(get_session_messages)

    def get_user_sessions(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """The user's sessions, most recent first, with how many runs each holds."""
        user = self._user(user_id)
        with self.db.reading() as conn:
            return sessions.list_sessions(conn, user)

    aget_user_sessions = flow.threaded(get_user_sessions)

    def _user(self, user_id: str | None) -> str:
        return checks.user(user_id if user_id is not None else self.user_id)

    def _manager(self) -> MemoryManager:
        # As in Agno, reading memories needs no memory option: a manager on the agent's db is made then.
        with self._manager_lock:
            if self.memory_manager is None:
                self.memory_manager = MemoryManager(model=for_extraction(self.model), db=self.db)
            return self.memory_manager

    def __repr__(self) -> str:
        return f"Agent(name={self.name!r}, model={str(self.model)!r}, db={self.db!r})"


def _foreign_session(session: str) -> ConfigError:
    # Same words as for any foreign id: do not confirm whose session it is.
    return ConfigError(f"session {session!r} belongs to another user; use a new session_id")
