"""Record real LLM traffic once, replay it offline: vcrpy configured for memlayer's calls.

- Secrets never reach a cassette: auth headers, keys in query strings and key-like JSON fields are
  replaced before anything is written.
- JSON bodies are stored as JSON (readable, reviewable diffs), and requests match on method, path and
  the *parsed* body, so a changed prompt finds no recording and fails loudly instead of replaying
  a stale answer.
- Each cassette says what produced it: the model, server and fingerprint seen in its responses.

Record with ``pytest --memlayer-record=once`` (or ``MEMLAYER_RECORD=once``) for new cassettes, or
``rewrite`` to re-record; the default, ``none``, never touches the network.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import clock
from .errors import CassetteError

__all__ = [
    "RECORD_ENV",
    "active_cassette",
    "explain_unrecorded",
    "normalise_mode",
    "record_mode",
    "unrecorded_request",
    "use_cassette",
]

RECORD_ENV = "MEMLAYER_RECORD"
_VCR_MODES = {"none": "none", "once": "once", "new": "new_episodes", "rewrite": "all"}
_ALIASES = {"new_episodes": "new", "all": "rewrite"}
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


def record_mode() -> str:
    """The record mode from ``MEMLAYER_RECORD``; ``none`` (replay only) when unset."""
    return normalise_mode(os.environ.get(RECORD_ENV, "") or "none")


def secret_name(name: object) -> bool:
    """Whether a header, query key or field of this name holds a secret (see _SECRET_WORDS)."""
    text = _CAMEL.sub(r"\1_\2", str(name))
    lowered = text.lower()
    compact = _WORD_SPLIT.sub("", lowered)
    words = [w for w in _WORD_SPLIT.split(lowered) if w]
    return (
        lowered in _SECRET_HEADERS
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


def _scrub_request(request: Any) -> Any:
    for name in list(request.headers):
        if secret_name(name):
            del request.headers[name]
    request.uri = _scrub_uri(request.uri)
    if request.body:
        request.body = _scrub_text(request.body)
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if secret_name(name):
            del headers[name]
    body = response.get("body")
    if isinstance(body, dict) and body.get("string"):
        body["string"] = _scrub_text(body["string"])
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


@dataclass(frozen=True)
class _Active:
    path: Path
    mode: str
    test_id: str | None

    def record_command(self, mode: str = "once") -> str:
        target = f" '{self.test_id}'" if self.test_id else ""
        return f"start the model server, then: pytest --memlayer-record={mode}{target}"


_ACTIVE: ContextVar[_Active | None] = ContextVar("memlayer_cassette", default=None)


def active_cassette() -> _Active | None:
    """The cassette the current test replays, if any (for error messages)."""
    return _ACTIVE.get()


@contextmanager
def use_cassette(
    path: str | Path,
    *,
    mode: str | None = None,
    test_id: str | None = None,
    note: str | None = None,
    pin_clock: bool = True,
) -> Iterator[Any]:
    """Replay (or record) the HTTP traffic inside the block from ``path``.

    ``mode`` is one of none (replay only; the default), once (record if the file is missing), new
    (replay, and record requests not yet in it) or rewrite (record everything afresh). Leaving the
    block fails with `CassetteError` when a request found no recording (even if the code under test
    swallowed the error) or when a recorded interaction was never played (a stale cassette).
    ``note`` is saved in the cassette's metadata when it records: say what produced it.
    ``pin_clock`` (the default) runs the block on memlayer's pinned clock and ids (`memlayer.clock`),
    so times and ids sent to the model replay exactly; turn it off where stored times must be real
    (a demo) and no request carries one.
    """
    try:
        import vcr  # imported here: it patches the HTTP clients, which only a cassette needs
    except ImportError as exc:
        raise CassetteError("cassettes need vcrpy: pip install 'memlayer[testing]'") from exc

    mode = normalise_mode(mode or record_mode())
    path = Path(path)
    active = _Active(path, mode, test_id)
    existed = path.exists()
    if mode == "none" and not existed:
        raise CassetteError(f"no cassette at {path}; record it: {active.record_command()}")
    recorder = vcr.VCR(
        record_mode=_VCR_MODES[mode],
        match_on=["method", "path", "json_body"],
        filter_headers=list(_SECRET_HEADERS),
        before_record_request=_scrub_request,
        before_record_response=_scrub_response,
        decode_compressed_response=True,
        # rewrite records from scratch: a stale interaction kept beside the new ones would then
        # fail the test as never played.
        drop_unused_requests=(mode == "rewrite"),
    )
    recorder.register_serializer("readable_json", _ReadableJson)
    recorder.register_matcher("json_body", _json_body)
    token = _ACTIVE.set(active)
    misses: list[str] = []
    try:
        with recorder.use_cassette(str(path), serializer="readable_json") as cassette:
            _watch_misses(cassette, misses)
            if note and mode != "none":
                cassette.get_metadata("note", note)
            with clock.pinned(_clock_start(cassette), seed=str(path.name)) if pin_clock else nullcontext():
                yield cassette
    finally:
        _ACTIVE.reset(token)
    if misses:
        listed = "\n  ".join(misses)
        raise CassetteError(
            f"{path}: {len(misses)} request(s) have no recording (a changed prompt, schema or model?):\n"
            f"  {listed}\nRe-record: {active.record_command('rewrite')}"
        )
    if existed and mode in ("none", "once") and not cassette.all_played:
        unplayed = len(cassette) - cassette.play_count
        raise CassetteError(
            f"{path}: {unplayed} recorded interaction(s) were never played; the code now makes fewer "
            f"calls than when it was recorded. Re-record: {active.record_command('rewrite')}"
        )


def _clock_start(cassette: Any) -> datetime:
    """When the recording began: memlayer's clock restarts there on every replay (see memlayer.clock)."""
    from vcr.errors import MissingMetadataError

    try:
        return datetime.fromisoformat(cassette.get_metadata("clock_start", clock.now().isoformat(timespec="seconds")))
    except MissingMetadataError:  # an older cassette, replayed read-only, that never stored a start
        return _OLD_CASSETTE_START


_OLD_CASSETTE_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _watch_misses(cassette: Any, misses: list[str]) -> None:
    """Note every request the cassette cannot answer while it refuses to record."""
    can_play = cassette.can_play_response_for

    def watched(request: Any) -> bool:
        playable = bool(can_play(request))
        if not playable and cassette.write_protected:
            misses.append(f"{request.method} {request.uri}")
        return playable

    cassette.can_play_response_for = watched


def normalise_mode(mode: str) -> str:
    """memlayer's record modes, also accepting vcrpy's names (new_episodes, all)."""
    mode = _ALIASES.get(mode.strip().lower(), mode.strip().lower())
    if mode not in _VCR_MODES:
        raise CassetteError(f"record mode {mode!r}: use one of {', '.join(_VCR_MODES)}")
    return mode


def unrecorded_request(exc: BaseException) -> BaseException | None:
    """vcrpy's 'no match in the cassette' error behind a provider error, if there is one."""
    errors = sys.modules.get("vcr.errors")
    if errors is None:  # vcrpy was never imported, so no cassette is in use
        return None
    kind: type[BaseException] = errors.CannotOverwriteExistingCassetteException
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def explain_unrecorded(exc: BaseException, *, subject: str, request: str, changed: str) -> CassetteError | None:
    """A `CassetteError` saying what to re-record, when ``exc`` is a request the cassette has no answer for.

    Under a replaying cassette the provider error reads "connection error", which would send people
    to debug their network.
    """
    missing = unrecorded_request(exc)
    if missing is None:
        return None
    active = active_cassette()
    where = f" {active.path}" if active else ""
    how = active.record_command("rewrite") if active else "re-record with the model server up"
    first = str(missing).strip().splitlines()[0][:300] if str(missing).strip() else ""
    detail = f" ({first})" if first else ""
    return CassetteError(
        f"{subject}: no recorded answer for {request} in the cassette{where}{detail}. "
        f"{changed} changed since recording; {how}"
    )
