"""The typed call over the direct transport: Instructor's request, parsing and re-asks, without Instructor.

Importing Instructor's client and response handling takes over a second and imports the OpenAI SDK, so
on the direct path (`memlayer.llm.openai_http`) memlayer does what Instructor 1.x does for an OpenAI
model in the two modes that path takes, with the same request body (cassettes match on it, and
``tests/test_openai_http.py`` compares both paths' bodies, re-asks included):

- ``json_schema``: ``response_format={"type": "json_schema", "json_schema": {"name", "schema"}}``;
  the reply's text is validated. A re-ask appends the reply and "Correct your JSON ONLY RESPONSE, ...".
- ``tools``: one function tool built from the model's schema, forced with ``tool_choice``; the first
  call's arguments are validated. A re-ask appends the reply and a ``tool`` message per call.

As with Instructor, validation is strict, ``retries`` re-asks follow a reply that does not validate
(or has no tool call), a reply cut off at ``max_tokens`` or refused is not re-asked, and a provider
error ends the call (`memlayer.llm.typed.send_with_retries` has already re-sent transient ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import flow
from .openai_http import Completion, Message
from .spec import ModelSpec

__all__ = ["IncompleteReply", "UnusableReply", "request_body", "typed_reply"]


class UnusableReply(ValueError):
    """The reply has no text or tool call to validate; re-asked like a validation error."""


class IncompleteReply(Exception):
    """The reply was cut off at the token limit, or refused; not re-asked."""


def request_body(spec: ModelSpec, messages: list[dict[str, Any]], response_model: type[BaseModel]) -> dict[str, Any]:
    """The chat completions body for a typed call, as Instructor and LiteLLM build it."""
    extra = {key: value for key, value in spec.extra.items() if key != "timeout"}
    body: dict[str, Any] = {"temperature": 0, **extra, "model": spec.name, "messages": list(messages)}
    if spec.instructor_mode == "json_schema":
        schema = response_model.model_json_schema()
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": response_model.__name__, "schema": schema},
        }
    else:
        function = _function_schema(response_model)
        body["tools"] = [{"type": "function", "function": function}]
        body["tool_choice"] = {"type": "function", "function": {"name": function["name"]}}
    return body


def typed_reply(
    spec: ModelSpec,
    body: dict[str, Any],
    response_model: type[BaseModel],
    retries: int,
    send: Callable[[dict[str, Any]], flow.Flow[Completion]],
) -> flow.Flow[BaseModel]:
    """Send ``body`` (via ``send``), validate the reply, re-ask up to ``retries`` times; the valid value."""
    for attempt in range(retries + 1):
        response = yield from send(body)
        try:
            return _parse(spec, response, response_model)
        except (ValidationError, UnusableReply) as exc:
            if attempt == retries:
                raise
            body = {**body, "messages": [*body["messages"], *_reask(spec, response, exc)]}
    raise AssertionError("unreachable: the last attempt returns or raises")


def _parse(spec: ModelSpec, response: Completion, response_model: type[BaseModel]) -> BaseModel:
    if not response.choices:
        mode = "json_schema_mode" if spec.instructor_mode == "json_schema" else "tool_call"  # Instructor's names
        raise UnusableReply(f"No choices in OpenAI response (mode: {mode})")
    choice = response.choices[0]
    if choice.finish_reason == "length":
        raise IncompleteReply("The output is incomplete due to a max_tokens length limit.")
    if spec.instructor_mode == "json_schema":
        return response_model.model_validate_json(choice.message.content or "", strict=True)
    if choice.message.refusal is not None:
        raise IncompleteReply(f"Unable to generate a response due to {choice.message.refusal}")
    if not choice.message.tool_calls:
        raise UnusableReply("No tool calls or function call found in response (mode: TOOLS)")
    return response_model.model_validate_json(choice.message.tool_calls[0].function.arguments, strict=True)


def _reask(spec: ModelSpec, response: Completion, exc: Exception) -> list[dict[str, Any]]:
    if not response.choices:
        return [{"role": "user", "content": f"Correct your JSON ONLY RESPONSE, based on the following errors:\n{exc}"}]
    message = response.choices[0].message
    sent = _dump(message)
    if spec.instructor_mode == "json_schema":
        return [
            sent,
            {"role": "user", "content": f"Correct your JSON ONLY RESPONSE, based on the following errors:\n{exc}"},
        ]
    text = f"Validation Error found:\n{exc}\nRecall the function correctly, fix the errors"
    if not message.tool_calls:
        return [sent, {"role": "user", "content": text}]
    tools = [
        {"role": "tool", "tool_call_id": c.id, "name": c.function.name, "content": text} for c in message.tool_calls
    ]
    return [sent, *tools]


def _dump(message: Message) -> dict[str, Any]:
    """The reply as the next request's assistant message (Instructor's ``dump_message``)."""
    dumped: dict[str, Any] = {"role": message.role, "content": message.content or ""}
    if message.tool_calls is not None:
        dumped["tool_calls"] = [
            {"id": c.id, "type": c.type, "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in message.tool_calls
        ]
    return dumped


def _function_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Instructor's OpenAI function for ``model`` (``generate_openai_schema``). Its docstring ``Args:``
    sections are not read: memlayer's response models have none."""
    schema = model.model_json_schema()
    parameters = {key: value for key, value in schema.items() if key not in ("title", "description")}
    parameters["required"] = sorted(schema.get("required", []))
    description = schema.get("description") or (
        f"Correctly extracted `{model.__name__}` with all the required parameters with correct types"
    )
    return {"name": schema["title"], "description": description, "parameters": parameters}
