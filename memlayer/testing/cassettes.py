"""Record real LLM traffic once, replay it offline: vcrpy configured for memlayer's calls.

- Secrets never reach a cassette: auth headers, keys in query strings and key-like JSON fields are
  replaced before anything is written.
- JSON bodies are stored as JSON (readable, reviewable diffs), and requests match on method, path and
  the *parsed* body, so a changed prompt finds no recording and fails loudly instead of replaying
  a stale answer.
- Each cassette says what produced it: the model, server and fingerprint seen in its responses.

Record with ``MEMLAYER_RECORD=once`` (new cassettes only) or ``MEMLAYER_RECORD=all`` (re-record);
the default, ``none``, never touches the network.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import CassetteError

__all__ = ["RECORD_ENV", "record_mode", "use_cassette"]

RECORD_ENV = "MEMLAYER_RECORD"
_MODES = ("none", "once", "new_episodes", "all")
_SECRET_HEADERS = (
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
    "set-cookie",
    "openai-organization",
    "openai-project",
)
_SECRET_QUERY = ("key", "api_key", "apikey", "token", "access_token")
_SECRET_FIELD = re.compile(r"(api[_-]?key|secret|password|token|authorization)$", re.IGNORECASE)
REDACTED = "<redacted>"


def record_mode() -> str:
    mode = os.environ.get(RECORD_ENV, "none").strip().lower() or "none"
    if mode not in _MODES:
        raise CassetteError(f"{RECORD_ENV}={mode!r}: use one of {', '.join(_MODES)}")
    return mode


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET_FIELD.search(str(k)) and v else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _as_json(body: Any) -> Any:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="strict")
    if not isinstance(body, str) or body.strip()[:1] not in ("{", "["):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _scrub_request(request: Any) -> Any:
    parsed = _as_json(request.body)
    if parsed is not None:
        request.body = json.dumps(_scrub(parsed)).encode()
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in _SECRET_HEADERS:
            del headers[name]
    return response


def _json_body(r1: Any, r2: Any) -> None:
    """vcrpy matcher: equal when both bodies parse to the same JSON (else the same bytes)."""
    a, b = _as_json(r1.body), _as_json(r2.body)
    if a is not None and b is not None:
        assert _scrub(a) == _scrub(b), "request bodies differ (was a prompt or schema changed?)"
    else:
        assert r1.body == r2.body, "request bodies differ"


class _ReadableJson:
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
        data["metadata"] = {**data.get("metadata", {}), "recorded_with": _provenance(data["interactions"])}
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


def _provenance(interactions: list[dict[str, Any]]) -> dict[str, Any]:
    """Which model and server answered, read off the responses themselves."""
    models, servers, fingerprints = set(), set(), set()
    for interaction in interactions:
        response = interaction["response"]
        headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
        for value in headers.get("server", []):
            servers.add(value)
        body = response.get("body", {})
        parsed = body.get("json") if isinstance(body, dict) else None
        if isinstance(parsed, dict):
            if parsed.get("model"):
                models.add(str(parsed["model"]))
            if parsed.get("system_fingerprint"):
                fingerprints.add(str(parsed["system_fingerprint"]))
    return {
        "models": sorted(models),
        "servers": sorted(servers),
        "fingerprints": sorted(fingerprints),
        "note": os.environ.get("MEMLAYER_CASSETTE_NOTE", ""),
        "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }


@contextmanager
def use_cassette(path: str | Path, *, mode: str | None = None) -> Iterator[Any]:
    """Replay (or record) the HTTP traffic inside the block from ``path``.

    On leaving, a replayed cassette must have been played to the end: an interaction left unplayed
    means the code now makes fewer calls than when it was recorded, and the test fails.
    """
    import vcr  # imported here: vcrpy is a testing dependency, not a runtime one

    mode = mode or record_mode()
    path = Path(path)
    if mode == "none" and not path.exists():
        raise CassetteError(
            f"no cassette at {path}; record it with the model server up: {RECORD_ENV}=once uv run pytest ..."
        )
    recorder = vcr.VCR(
        record_mode=mode,
        match_on=["method", "path", "json_body"],
        filter_headers=list(_SECRET_HEADERS),
        filter_query_parameters=list(_SECRET_QUERY),
        before_record_request=_scrub_request,
        before_record_response=_scrub_response,
        decode_compressed_response=True,
        # "all" re-records from scratch: a stale interaction kept beside the new ones would
        # then fail the test as never played.
        drop_unused_requests=(mode == "all"),
    )
    recorder.register_serializer("readable_json", _ReadableJson)
    recorder.register_matcher("json_body", _json_body)
    with recorder.use_cassette(str(path), serializer="readable_json") as cassette:
        yield cassette
    if mode == "none" and not cassette.all_played:
        unplayed = len(cassette) - cassette.play_count
        raise CassetteError(
            f"{path}: {unplayed} recorded interaction(s) were never played; the code now makes fewer "
            f"calls than when it was recorded. Re-record: {RECORD_ENV}=all uv run pytest ..."
        )


def unrecorded_request(exc: BaseException) -> BaseException | None:
    """The vcrpy 'no match in cassette' error behind a provider error, if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if type(current).__name__ == "CannotOverwriteExistingCassetteException":
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
