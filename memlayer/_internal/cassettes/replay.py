"""Record real LLM traffic once, replay it offline: vcrpy configured for memlayer's calls.

How a cassette is written (scrubbed, readable, matched on the parsed body) is `memlayer._internal.cassettes.format`.

Record with ``pytest --memlayer-record=once`` (or ``MEMLAYER_RECORD=once``) for new cassettes, or
``rewrite`` to re-record; the default, ``none``, never touches the network.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import clock
from ..errors import CassetteError
from .format import SECRET_HEADERS, ReadableJson, json_body_matcher, scrub_request, scrub_response
from .keys import placeholder_keys

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


def record_mode() -> str:
    """The record mode from ``MEMLAYER_RECORD``; ``none`` (replay only) when unset."""
    return normalise_mode(os.environ.get(RECORD_ENV, "") or "none")


@dataclass(frozen=True)
class ActiveCassette:
    path: Path
    mode: str
    test_id: str | None

    def record_command(self, mode: str = "once") -> str:
        target = f" '{self.test_id}'" if self.test_id else ""
        return f"start the model server, then: pytest --memlayer-record={mode}{target}"


_ACTIVE: ContextVar[ActiveCassette | None] = ContextVar("memlayer_cassette", default=None)


def active_cassette() -> ActiveCassette | None:
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
    ``pin_clock`` (the default) runs the block on memlayer's pinned clock and ids (`memlayer._internal.clock`),
    so times and ids sent to the model replay exactly; turn it off where stored times must be real
    (a demo) and no request carries one.

    Replay (mode none) needs no provider key: unset key variables hold a placeholder inside the block
    (`memlayer._internal.cassettes.keys`). Recording needs the real key; memlayer names a missing one before the
    first request.
    """
    try:
        import vcr  # imported here: it patches the HTTP clients, which only a cassette needs
    except ImportError as exc:
        raise CassetteError("cassettes need vcrpy: pip install 'memlayer-ai[testing]'") from exc

    mode = normalise_mode(mode or record_mode())
    path = Path(path)
    active = ActiveCassette(path, mode, test_id)
    existed = path.exists()
    if mode == "none" and not existed:
        raise CassetteError(f"no cassette at {path}; record it: {active.record_command()}")
    recorder = vcr.VCR(
        record_mode=_VCR_MODES[mode],
        match_on=["method", "path", "json_body"],
        filter_headers=list(SECRET_HEADERS),
        before_record_request=scrub_request,
        before_record_response=scrub_response,
        decode_compressed_response=True,
        # rewrite records from scratch: a stale interaction kept beside the new ones would then
        # fail the test as never played.
        drop_unused_requests=(mode == "rewrite"),
    )
    recorder.register_serializer("readable_json", ReadableJson)
    recorder.register_matcher("json_body", json_body_matcher)
    token = _ACTIVE.set(active)
    misses: list[str] = []
    try:
        with (
            recorder.use_cassette(str(path), serializer="readable_json") as cassette,
            placeholder_keys() if mode == "none" else nullcontext(),
        ):
            _watch_misses(cassette, misses)
            if note and mode != "none":
                cassette.get_metadata("note", note)
            with clock.pinned(_clock_start(cassette), seed=str(path.name)) if pin_clock else nullcontext():
                yield cassette
    except BaseException:
        # A recording that failed before its first request (a missing key, a bad model string) would
        # leave an empty cassette, which the next replay would take for the recording and fail on.
        if not existed and path.exists() and not _recorded_anything(path):
            path.unlink()
        raise
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


def _recorded_anything(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text()).get("interactions"))
    except (OSError, ValueError, AttributeError):
        return True  # unreadable: not ours to delete


def _clock_start(cassette: Any) -> datetime:
    """When the recording began: memlayer's clock restarts there on every replay (see memlayer._internal.clock)."""
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
