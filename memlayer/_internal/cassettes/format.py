"""How a cassette is written: secrets scrubbed, JSON bodies stored as JSON, and what produced it.

- Secrets never reach a cassette: auth headers, keys in query strings and key-like JSON fields are
  replaced before anything is written.
- JSON bodies are stored as JSON (readable, reviewable diffs), and requests match on method, path and
  the *parsed* body, so a changed prompt finds no recording and fails loudly instead of replaying
  a stale answer.
- Each cassette says what produced it: the model, server and fingerprint seen in its responses.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "ReadableJson",
    "json_body_matcher",
    "scrub_request",
    "scrub_response",
    "secret_name",
]

SECRET_HEADERS = (
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
    "set-cookie",
    "openai-organization",
    "openai-project",
)
# A name is secret when one of its words (split at -, _, . and camelCase) is one of _SECRET_WORDS, its
# last word is one of _SECRET_LAST, or it holds one of _SECRET_PARTS anywhere: one case-insensitive rule
# for headers, query keys, JSON and form fields, in requests and responses alike. "key" and "token" count
# only last, so token counts ("promptTokenCount", "max_tokens") and "x-litellm-key-spend" stay readable.
_SECRET_WORDS = frozenset(
    {"apikey", "secret", "password", "passwd", "pwd", "auth", "authorization", "credential", "credentials",
     "cookie", "signature", "sig", "bearer"}
)  # fmt: skip
_SECRET_LAST = frozenset({"key", "token"})
_SECRET_PARTS = ("apikey", "secret", "password", "authorization", "privatekey", "accesskey", "cookie")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_USERINFO = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@?#]*@")
REDACTED = "<redacted>"


def secret_name(name: object) -> bool:
    """Whether a header, query key or field of this name holds a secret (see _SECRET_WORDS)."""
    text = _CAMEL.sub(r"\1_\2", str(name))
    lowered = text.lower()
    compact = _WORD_SPLIT.sub("", lowered)
    words = [w for w in _WORD_SPLIT.split(lowered) if w]
    return (
        lowered in SECRET_HEADERS
        or bool(set(words) & _SECRET_WORDS)
        or bool(words and words[-1] in _SECRET_LAST)
        or any(part in compact for part in _SECRET_PARTS)
    )


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if secret_name(k) and v else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _as_json(body: Any) -> Any:
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            return None
    if not isinstance(body, str) or body.strip()[:1] not in ("{", "["):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _scrub_uri(uri: str) -> str:
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    uri = _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", uri)
    parts = urlsplit(uri)
    if not parts.query:
        return uri
    pairs = [(k, REDACTED if secret_name(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe="<>")))


def _scrub_text(body: Any) -> Any:
    """A JSON, server-sent-events or form-encoded body with its secret fields redacted; others as they are."""
    from urllib.parse import parse_qsl, urlencode

    parsed = _as_json(body)
    if parsed is not None:
        return json.dumps(_scrub(parsed)).encode()
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if not isinstance(text, str) or not text.strip():
        return body
    if "data:" in text:
        lines = [_scrub_event(line) for line in text.split("\n")]
        return "\n".join(lines).encode() if isinstance(body, bytes) else "\n".join(lines)
    if "=" in text and not any(c.isspace() for c in text.strip()):
        pairs = parse_qsl(text.strip(), keep_blank_values=True)
        if any(secret_name(k) for k, _ in pairs):
            scrubbed = urlencode([(k, REDACTED if secret_name(k) else v) for k, v in pairs], safe="<>")
            return scrubbed.encode() if isinstance(body, bytes) else scrubbed
    return body


def _scrub_event(line: str) -> str:
    if not line.startswith("data:"):
        return line
    parsed = _as_json(line[5:].strip())
    return line if parsed is None else "data: " + json.dumps(_scrub(parsed))


def scrub_request(request: Any) -> Any:
    for name in list(request.headers):
        if secret_name(name):
            del request.headers[name]
    request.uri = _scrub_uri(request.uri)
    if request.body:
        request.body = _scrub_text(request.body)
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if secret_name(name):
            del headers[name]
    body = response.get("body")
    if isinstance(body, dict) and body.get("string"):
        body["string"] = _scrub_text(body["string"])
    return response


def json_body_matcher(r1: Any, r2: Any) -> None:
    """vcrpy matcher: equal when both bodies parse to the same JSON (else the same bytes)."""
    a, b = _as_json(r1.body), _as_json(r2.body)
    if a is not None and b is not None:
        assert _scrub(a) == _scrub(b), "request bodies differ (was a prompt or schema changed?)"
    else:
        assert r1.body == r2.body, "request bodies differ"


class ReadableJson:
    """A vcrpy serializer: pretty JSON, with JSON bodies inlined as objects instead of strings."""

    @staticmethod
    def serialize(data: dict[str, Any]) -> str:
        for interaction in data["interactions"]:
            for part in (interaction["request"], interaction["response"]):
                body = part.get("body")
                raw = body.get("string") if isinstance(body, dict) else body
                parsed = _as_json(raw)
                if parsed is None:
                    continue
                if isinstance(body, dict):
                    part["body"] = {**body, "string": None, "json": parsed}
                else:
                    part["body"] = {"json": parsed}
        metadata = data.get("metadata", {})
        data["metadata"] = {**metadata, "recorded_with": _provenance(data["interactions"], metadata.get("note"))}
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"

    @staticmethod
    def deserialize(text: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(text)
        for interaction in data["interactions"]:
            request = interaction["request"]
            if isinstance(request.get("body"), dict) and "json" in request["body"]:
                request["body"] = json.dumps(request["body"]["json"])
            response = interaction["response"]
            body = response.get("body")
            if isinstance(body, dict) and "json" in body:
                response["body"] = {"string": json.dumps(body["json"])}
        return data


def _provenance(interactions: list[dict[str, Any]], note: str | None) -> dict[str, Any]:
    """Which model and server answered, read off the responses themselves."""
    models, servers, fingerprints = set(), set(), set()
    for interaction in interactions:
        response = interaction["response"]
        headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
        for value in headers.get("server", []):
            servers.add(value)
        body = response.get("body", {})
        parsed = body.get("json") if isinstance(body, dict) else None
        if parsed is None and isinstance(body, dict):
            parsed = _first_sse_event(body.get("string"))
        if isinstance(parsed, dict):
            if parsed.get("model"):
                models.add(str(parsed["model"]))
            if parsed.get("system_fingerprint"):
                fingerprints.add(str(parsed["system_fingerprint"]))
    return {
        "models": sorted(models),
        "servers": sorted(servers),
        "fingerprints": sorted(fingerprints),
        "note": note or os.environ.get("MEMLAYER_CASSETTE_NOTE", ""),
        "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }


def _first_sse_event(text: Any) -> Any:
    """The first JSON event of a streamed (server-sent events) body, to read its model name."""
    if not isinstance(text, str):
        return None
    for line in text.splitlines():
        if line.startswith("data:") and line[5:].strip().startswith("{"):
            return _as_json(line[5:].strip())
    return None
