"""One chat step of an agent through LiteLLM (`memlayer._internal.llm.road`): streamed or not, with tools called
natively or as JSON.

A step is a flow (`memlayer._internal.flow`): it yields the answer's text as it arrives (when streaming) and
returns one `ChatReply`; the agent drives it in a thread or in an event loop. Tools are called
natively where the provider supports it. Local servers such as llama.cpp ignore ``tools``, so
``tool_mode="json"`` asks instead for one JSON object holding the tool calls and the answer,
constrained by a JSON schema that such servers enforce with a grammar. Its answer still streams:
the content string is decoded as it arrives.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import from_json

from .. import flow
from ..records import LLMUsage
from .litellm import import_litellm
from .road import Road, road
from .spec import ModelSpec
from .usage import LLMCallError, UsageMeter, call_failure, usage_of

__all__ = ["ChatReply", "ToolCall", "ToolMode", "ToolSpec", "default_tool_mode", "step", "tool_result_messages"]

ToolMode = Literal["native", "json"]


class ToolSpec(Hashable, Protocol):
    """What a step needs to offer a tool to the model (`memlayer._internal.agent.tools.Tool` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def args_model(self) -> type[BaseModel]: ...

    def schema(self) -> dict[str, Any]: ...


# JSON mode bounds the answer so a small model cannot run on to the context limit.
_JSON_ANSWER_CHARS = 1500
_JSON_MAX_CALLS = 4


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True)
class ChatReply:
    content: str
    tool_calls: list[ToolCall]
    usage: LLMUsage
    message: dict[str, Any]  # the assistant message, as it goes back into the conversation


def default_tool_mode(spec: ModelSpec) -> ToolMode:
    # The providers where memlayer's extraction uses a JSON schema are the ones that ignore tools.
    return "json" if spec.instructor_mode in ("json_schema", "json", "md_json") else "native"


def step(
    spec: ModelSpec, messages: list[dict[str, Any]], tools: Sequence[ToolSpec], *, mode: ToolMode, stream: bool
) -> flow.Flow[ChatReply]:
    """One model call: yields text deltas (when ``stream`` and the text is the answer), returns the reply."""
    way = road(spec)
    way.ready()
    meter, started = UsageMeter(), time.perf_counter()
    kwargs = _request(way, messages, tools, mode, stream)
    try:
        response = yield from way.send(meter, 0, kwargs)  # one request per step, each counted
        if stream:
            chunks, answer = [], _AnswerText(json_reply=mode == "json" and bool(tools))
            while (chunk := (yield flow.Next(response))) is not flow.END:
                chunks.append(chunk)
                if text := answer.feed(_delta(chunk)):
                    yield text
            response = import_litellm().stream_chunk_builder(chunks, messages=kwargs["messages"])
            meter.record(response, time.perf_counter() - started, way.price)
    except Exception as exc:
        raise call_failure(spec, "chat", meter, time.perf_counter() - started, exc) from exc
    return _reply(spec, response, tools, mode, meter, time.perf_counter() - started)


def tool_result_messages(mode: ToolMode, calls: Sequence[ToolCall], results: Sequence[str]) -> list[dict[str, Any]]:
    """The messages that hand tool results back to the model, in the form its tool mode expects."""
    if mode == "native":
        return [
            {"role": "tool", "tool_call_id": call.id, "content": result}
            for call, result in zip(calls, results, strict=True)
        ]
    lines = [f"{call.name}({call.arguments}) returned: {result}" for call, result in zip(calls, results, strict=True)]
    return [{"role": "user", "content": "Tool results:\n" + "\n".join(lines)}]


def _request(
    way: Road, messages: list[dict[str, Any]], tools: Sequence[ToolSpec], mode: ToolMode, stream: bool
) -> dict[str, Any]:
    # A copy: the agent appends to its list after the call, and the call must keep what was sent.
    call: dict[str, Any] = {"messages": list(messages)}
    if tools and mode == "native":
        call["tools"] = [tool.schema() for tool in tools]
    elif tools:
        call["messages"] = _with_tool_guide(messages, tools)
        schema = _step_model(tuple(tools)).model_json_schema()
        call["response_format"] = {"type": "json_schema", "json_schema": {"name": "agent_step", "schema": schema}}
    if stream:
        call.update(stream=True, stream_options={"include_usage": True})
    return way.keywords(purpose="chat", **call)


class _AnswerText:
    """The answer's text from a stream of deltas, as it arrives.

    A plain reply is its own text. A JSON-mode reply is ``{"tool_calls": [], "content": "..."}`` (the
    schema fixes that order, so the calls are complete once ``content`` starts): its answer is the
    content string, parsed as it streams by pydantic-core's partial JSON mode, and only when the list of
    calls is empty. A reply that calls tools streams nothing.
    """

    def __init__(self, *, json_reply: bool) -> None:
        self.json_reply = json_reply
        self.raw = ""
        self.sent = 0

    def feed(self, delta: str | None) -> str:
        if not delta:
            return ""
        if not self.json_reply:
            return delta
        self.raw += delta
        try:
            # "trailing-strings" keeps a string cut off mid-way (and drops a half-written escape).
            partial = from_json(self.raw, allow_partial="trailing-strings")
        except ValueError:
            return ""  # not the JSON the schema asks for; the whole reply is checked when it ends
        if not isinstance(partial, dict) or partial.get("tool_calls") != [] or "content" not in partial:
            return ""
        text = str(partial["content"])
        new, self.sent = text[self.sent :], max(self.sent, len(text))
        return new


def _delta(chunk: Any) -> str | None:
    try:
        return chunk.choices[0].delta.content  # type: ignore[no-any-return]
    except (AttributeError, IndexError):
        return None  # the closing usage chunk has no choices


def _reply(
    spec: ModelSpec, response: Any, tools: Sequence[ToolSpec], mode: ToolMode, meter: UsageMeter, seconds: float
) -> ChatReply:
    usage = usage_of(spec, "chat", meter, seconds)
    message = response.choices[0].message
    content = message.content or ""
    if mode == "json" and tools:
        return _json_reply(spec, content, tools, usage, cut_off=response.choices[0].finish_reason == "length")
    calls = [ToolCall(c.id, c.function.name, c.function.arguments or "{}") for c in message.tool_calls or []]
    wire: dict[str, Any] = {"role": "assistant", "content": content or None}
    if calls:
        wire["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
        ]
    return ChatReply(content, calls, usage, wire)


def _json_reply(
    spec: ModelSpec, content: str, tools: Sequence[ToolSpec], usage: LLMUsage, *, cut_off: bool
) -> ChatReply:
    try:
        parsed = _step_model(tuple(tools)).model_validate_json(content)
    except ValidationError as exc:
        why = (
            f"it was cut off at {usage.output_tokens} tokens; raise max_tokens"
            if cut_off
            else str(exc).splitlines()[-2].strip()
        )
        raise LLMCallError(
            f"{spec}: the reply is not a valid JSON agent step: {why}", model=str(spec), usage=usage, last_reply=content
        ) from exc
    calls = [
        ToolCall(f"call_{usage.call_id[:8]}_{i}", c.name, c.arguments.model_dump_json())
        for i, c in enumerate(parsed.tool_calls)  # type: ignore[attr-defined]
    ]
    answer = "" if calls else str(parsed.content)  # type: ignore[attr-defined]
    return ChatReply(answer, calls, usage, {"role": "assistant", "content": content})


def _with_tool_guide(messages: list[dict[str, Any]], tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    # The server turns the step schema into a grammar the model never reads, so the guide names each
    # tool's arguments and shows one call: without it qwen1.5b never called a tool.
    guide = "\n".join(f"- {t.name}({', '.join(t.args_model.model_fields)}): {t.description}" for t in tools)
    first = tools[0]
    call = {"name": first.name, "arguments": {a: "..." for a in list(first.args_model.model_fields)[:1]}}
    example = json.dumps({"tool_calls": [call], "content": ""})
    text = (
        "Reply with one JSON object. To call tools, list them in tool_calls and leave content empty; "
        "you will get their results. To answer the user, leave tool_calls empty and write the answer "
        f"in content.\nTools:\n{guide}\nA call looks like: {example}"
    )
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{messages[0]['content']}\n\n{text}"}, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


@functools.lru_cache(maxsize=64)
def _step_model(tools: tuple[ToolSpec, ...]) -> type[BaseModel]:
    """The JSON-mode reply: a list of calls (a union discriminated by tool name), then the answer."""
    calls = [
        create_model(
            f"Call_{t.name}",
            __config__=ConfigDict(extra="forbid"),
            name=(Literal[t.name], ...),  # type: ignore[arg-type]
            arguments=(t.args_model, ...),
        )
        for t in tools
    ]
    call_type: Any = calls[0] if len(calls) == 1 else Union[tuple(calls)]  # noqa: UP007
    return create_model(
        "AgentStep",
        tool_calls=(list[call_type], Field(max_length=_JSON_MAX_CALLS)),
        content=(str, Field(max_length=_JSON_ANSWER_CHARS)),
    )


def parse_arguments(arguments: str) -> dict[str, Any]:
    """A tool call's arguments as a dict; an empty string is no arguments."""
    value = json.loads(arguments or "{}")
    if not isinstance(value, dict):
        raise ValueError(f"tool arguments must be a JSON object, got {arguments[:80]!r}")
    return value
