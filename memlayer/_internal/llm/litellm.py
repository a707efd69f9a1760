"""The one place LiteLLM (and Instructor) are imported: in a background thread, without network side effects.

LiteLLM takes seconds to import, so ``import memlayer`` never imports it. Building a `MemoryManager`,
an `Agent` or ``memlayer serve`` with a model calls `start_import`: one daemon thread imports LiteLLM
and Instructor while the caller goes on, so a server's first request finds them loaded. Whoever needs
them (`import_litellm`, `import_instructor`) waits for that thread instead of importing a second time.
LiteLLM never fetches its price list or other data from GitHub (the ``LITELLM_LOCAL_*`` switches below).

LiteLLM's process-wide settings (``num_retries``, callbacks, ...) are the user's: memlayer passes what it
needs per call. One exception: ``suppress_debug_info`` is set, because LiteLLM prints its "Provider List"
and "Give Feedback" banners to stdout on every provider error and has no per-call switch for them; a
library must not write to its user's stdout (an MCP server's stdio transport is stdout).
"""

from __future__ import annotations

import difflib
import os
import sys
import threading
from types import ModuleType

from ..cassettes import active_cassette
from ..errors import ConfigError
from .spec import ModelSpec

__all__ = [
    "LITELLM_OFFLINE_SWITCHES",
    "check_keys_when_recording",
    "check_provider",
    "import_instructor",
    "import_litellm",
    "keep_litellm_offline",
    "known_providers",
    "missing_keys",
    "require_keys",
    "start_import",
]


# LiteLLM fetches these from GitHub unless told to use its bundled copies: the price list at import,
# Anthropic's beta headers on the first Anthropic call, and others on their first use.
LITELLM_OFFLINE_SWITCHES = (
    "LITELLM_LOCAL_MODEL_COST_MAP",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS",
    "LITELLM_LOCAL_BLOG_POSTS",
    "LITELLM_LOCAL_POLICY_TEMPLATES",
)


def keep_litellm_offline() -> None:
    """Point LiteLLM at its bundled data (a variable the caller set is left alone)."""
    for name in LITELLM_OFFLINE_SWITCHES:
        os.environ.setdefault(name, "True")


class _Import:
    """The one import of LiteLLM and Instructor in this process: its thread, and how it ended."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> threading.Thread:
        with self.lock:
            if self.thread is None:
                keep_litellm_offline()
                self.thread = threading.Thread(target=self._run, name="memlayer-import-litellm", daemon=True)
                self.thread.start()
            return self.thread

    def _run(self) -> None:
        try:
            import litellm

            litellm.suppress_debug_info = True  # banners go to stdout (module doc)
            import instructor  # noqa: F401
        except BaseException as exc:  # re-raised in every thread that waits for the import
            self.error = exc

    def wait(self) -> None:
        self.start().join()
        if self.error is not None:
            raise self.error


_IMPORT = _Import()


def start_import() -> None:
    """Begin importing LiteLLM and Instructor in a background thread, once per process; returns at once."""
    _IMPORT.start()


def import_litellm() -> ModuleType:
    """LiteLLM, imported without its network side effects: waits for the background import (starting it)."""
    _IMPORT.wait()
    return sys.modules["litellm"]


def import_instructor() -> ModuleType:
    """Instructor, imported by the same background thread as LiteLLM."""
    _IMPORT.wait()
    return sys.modules["instructor"]


def known_providers() -> frozenset[str]:
    """LiteLLM's provider names (``litellm.provider_list``); waits for LiteLLM's background import."""
    return frozenset(str(getattr(p, "value", p)) for p in import_litellm().provider_list)


def check_provider(spec: ModelSpec) -> None:
    """Raise `ConfigError`, with a suggestion, when LiteLLM knows no provider of ``spec``'s name."""
    providers = known_providers()
    if spec.provider not in providers:
        close = difflib.get_close_matches(spec.provider, sorted(providers), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(f'{c}:{spec.name}') for c in close)}?" if close else ""
        raise ConfigError(f"unknown provider {spec.provider!r} in model {str(spec)!r}{hint}")


def missing_keys(spec: ModelSpec) -> list[str]:
    """The environment variables holding the provider key that ``spec`` needs and does not have.

    Empty when the spec carries its own ``api_key`` or one of the variables is set. Any one of the names
    is enough (Gemini reads GEMINI_API_KEY or GOOGLE_API_KEY). Only API keys and tokens count: other
    credentials LiteLLM lists (AWS, Vertex projects, Azure bases) have other sources (profiles, ADC, a
    per-call api_base), which LiteLLM cannot see, so they are left to the provider to report.
    """
    if spec.api_key:
        return []
    found = import_litellm().validate_environment(model=spec.litellm_model, api_base=spec.api_base)
    if found.get("keys_in_environment"):
        return []
    return [str(name) for name in found.get("missing_keys", []) if str(name).endswith(("_API_KEY", "_API_TOKEN"))]


def require_keys(spec: ModelSpec, *, doing: str = "") -> None:
    """Raise `ConfigError` naming the variable to set, before any request, when the provider key is missing.

    Without it LiteLLM fails inside the request with a provider-specific message ("Missing credentials").
    """
    names = missing_keys(spec)
    if names:
        raise ConfigError(
            f"model {str(spec)!r} needs an API key{doing}: set {' or '.join(names)} (or pass api_key=...)"
        )


def check_keys_when_recording(spec: ModelSpec) -> None:
    """Under a cassette that records, a missing key is named before any request is sent.

    Only then: a replaying cassette supplies placeholder keys (`memlayer._internal.cassettes`), and outside a
    cassette the request may not reach LiteLLM at all (a scripted model in a unit test needs no key);
    the command line checks up front for the commands that call a model.
    """
    cassette = active_cassette()
    if cassette is not None and cassette.mode != "none":
        require_keys(spec, doing=f" to record {cassette.path}")
