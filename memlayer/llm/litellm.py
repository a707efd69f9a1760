"""The one place LiteLLM is imported: without its network side effects, and only on first use.

LiteLLM takes 8 s to import, so ``import memlayer`` never imports it; and it never fetches its price
list or other data from GitHub (the ``LITELLM_LOCAL_*`` switches below). LiteLLM's process-wide
settings (``num_retries``, ``suppress_debug_info``, ...) are the user's: memlayer passes what it needs
per call, so a user's own LiteLLM calls behave as they would without memlayer.
"""

from __future__ import annotations

import os
from types import ModuleType

from ..cassettes import active_cassette
from ..errors import ConfigError
from .spec import ModelSpec

__all__ = [
    "LITELLM_OFFLINE_SWITCHES",
    "check_keys_when_recording",
    "import_litellm",
    "keep_litellm_offline",
    "missing_keys",
    "require_keys",
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


def import_litellm() -> ModuleType:
    """Import LiteLLM without its network side effects: no data fetched from GitHub."""
    keep_litellm_offline()
    import litellm

    return litellm


def missing_keys(spec: ModelSpec) -> list[str]:
    """The environment variables holding the provider key that ``spec`` needs and does not have.

    Empty when the spec carries its own ``api_key`` or one of the variables is set. Any one of the names
    is enough (Gemini reads GEMINI_API_KEY or GOOGLE_API_KEY). Only API keys and tokens count: other
    credentials LiteLLM lists (AWS, Vertex projects, Azure bases) have other sources (profiles, ADC, a
    per-call api_base), which LiteLLM cannot see, so they are left to the provider to report.
    """
    if spec.api_key:
        return []
    if spec.provider == "openai":  # LiteLLM's answer for OpenAI, without importing LiteLLM (seconds)
        return [] if "OPENAI_API_KEY" in os.environ else ["OPENAI_API_KEY"]
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

    Only then: a replaying cassette supplies placeholder keys (`memlayer.cassettes`), and outside a
    cassette the request may not reach LiteLLM at all (a scripted model in a unit test needs no key);
    the command line checks up front for the commands that call a model.
    """
    cassette = active_cassette()
    if cassette is not None and cassette.mode != "none":
        require_keys(spec, doing=f" to record {cassette.path}")


_UNPRICED: set[str] = set()  # models LiteLLM has no price for; asking again costs ~1 ms per call
