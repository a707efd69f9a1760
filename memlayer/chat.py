"""One chat step of an agent through LiteLLM: streamed or not, with tools called natively or as JSON.

A step is a generator: it yields the answer's text as it arrives (when streaming), then one
`ChatReply`. Tools are called natively where the provider supports it. Local servers such as
llama.cpp ignore ``tools``, so ``tool_mode="json"`` asks instead for one JSON object holding the tool
calls and the answer, constrained by a JSON schema that such servers enforce with a grammar. Its
answer still streams: the content string is decoded as it arrives.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .models import LLMCallError, ModelSpec, UsageMeter, call_failure, import_litellm, usage_of
from .types import LLMUsage

if TYPE_CHECKING:
    from .tools import Tool

__all__ = ["ChatReply", "ToolCall", "ToolMode", "astep", "default_tool_mode", "step", "tool_result_messages"]

ToolMode = Literal["native", "json"]
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
    spec: ModelSpec, messages: list[dict[str, Any]], tools: Sequence[Tool], *, mode: ToolMode, stream: bool
) -> Iterator[str | ChatReply]:
    """One model call: yields text deltas (when ``stream`` and the text is the answer), then the reply."""
    litellm = import_litellm()
    meter, started = UsageMeter(), time.perf_counter()
    kwargs = _request(spec, messages, tools, mode, stream)
    try:
        response = litellm.completion(**kwargs)
        if stream:
            chunks, answer = [], _AnswerText(json_reply=mode == "json" and bool(tools))
            for chunk in response:
                chunks.append(chunk)
                if text := answer.feed(_delta(chunk)):
                    yield text
            response = litellm.stream_chunk_builder(chunks, messages=kwargs["messages"])
    except Exception as exc:
        raise call_failure(spec, "chat", meter, time.perf_counter() - started, exc) from exc
    meter.record(response, time.perf_counter() - started, litellm)
    yield _reply(spec, response, tools, mode, meter, time.perf_counter() - started)


async def astep(
    spec: ModelSpec, messages: list[dict[str, Any]], tools: Sequence[Tool], *, mode: ToolMode, stream: bool
) -> AsyncIterator[str | ChatReply]:
    """The async twin of `step`, over ``litellm.acompletion``."""
    litellm = import_litellm()
    meter, started = UsageMeter(), time.perf_counter()
    kwargs = _request(spec, messages, tools, mode, stream)
    try:
        response = await litellm.acompletion(**kwargs)
        if stream:
            chunks, answer = [], _AnswerText(json_reply=mode == "json" and bool(tools))
            async for chunk in response:
                chunks.append(chunk)
                if text := answer.feed(_delta(chunk)):
                    yield text
            response = litellm.stream_chunk_builder(chunks, messages=kwargs["messages"])
    except Exception as exc:
        raise call_failure(spec, "chat", meter, time.perf_counter() - started, exc) from exc
    meter.record(response, time.perf_counter() - started, litellm)
    yield _reply(spec, response, tools, mode, meter, time.perf_counter() - started)


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
    spec: ModelSpec, messages: list[dict[str, Any]], tools: Sequence[Tool], mode: ToolMode, stream: bool
) -> dict[str, Any]:
    # A copy: the agent appends to its list after the call, and the call must keep what was sent.
    kwargs: dict[str, Any] = {**spec.extra, "model": spec.litellm_model, "messages": list(messages)}
    if spec.api_base:
        kwargs["api_base"] = spec.api_base
    if spec.api_key:
        kwargs["api_key"] = spec.api_key
    if tools and mode == "native":
        kwargs["tools"] = [tool.schema() for tool in tools]
    elif tools:
        kwargs["messages"] = _with_tool_guide(messages, tools)
        schema = _step_model(tuple(tools)).model_json_schema()
        kwargs["response_format"] = {"type": "json_schema", "json_schema": {"name": "agent_step", "schema": schema}}
    if stream:
        kwargs.update(stream=True, stream_options={"include_usage": True})
    return kwargs


class _AnswerText:
    """The answer's text from a stream of deltas, as it arrives.

    A plain reply is its own text. A JSON-mode reply is ``{"tool_calls": [], "content": "..."}`` (the
    schema fixes that order): its answer is the content string, decoded as it streams, and only when
    the list of calls is empty. A reply that calls tools streams nothing.
    """

    _ANSWER = re.compile(r'\s*\{\s*"tool_calls"\s*:\s*\[\s*\]\s*,\s*"content"\s*:\s*"')
    _CALLS = re.compile(r'\s*\{\s*"tool_calls"\s*:\s*\[\s*[^\]\s]')

    def __init__(self, *, json_reply: bool) -> None:
        self.json_reply = json_reply
        self.raw = ""
        self.start: int | None = None
        self.sent = 0

    def feed(self, delta: str | None) -> str:
        if not delta:
            return ""
        if not self.json_reply:
            return delta
        self.raw += delta
        if self.start is None:
            found = self._ANSWER.match(self.raw)
            if found is None:
                return ""
            self.start = found.end()
        text = _decode_partial(self.raw[self.start :])
        new, self.sent = text[self.sent :], len(text)
        return new


def _decode_partial(body: str) -> str:
    """The decoded part of a JSON string body that may be cut anywhere, even inside an escape."""
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char == '"':
            break  # the string ended
        if char != "\\":
            out.append(char)
            i += 1
            continue
        size = 6 if body[i + 1 : i + 2] == "u" else 2
        if i + size > len(body):
            break  # an escape not complete yet
        out.append(json.loads(f'"{body[i : i + size]}"'))
        i += size
    return "".join(out)


def _delta(chunk: Any) -> str | None:
    try:
        return chunk.choices[0].delta.content  # type: ignore[no-any-return]
    except (AttributeError, IndexError):
        return None  # the closing usage chunk has no choices


def _reply(
    spec: ModelSpec, response: Any, tools: Sequence[Tool], mode: ToolMode, meter: UsageMeter, seconds: float
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


def _json_reply(spec: ModelSpec, content: str, tools: Sequence[Tool], usage: LLMUsage, *, cut_off: bool) -> ChatReply:
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


def _with_tool_guide(messages: list[dict[str, Any]], tools: Sequence[Tool]) -> list[dict[str, Any]]:
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
def _step_model(tools: tuple[Tool, ...]) -> type[BaseModel]:
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
