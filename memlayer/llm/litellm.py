"""The one place LiteLLM is imported: without its network side effects, and only on first use.

LiteLLM takes 8 s to import, so ``import memlayer`` never imports it; and it never fetches its price
list or other data from GitHub (the ``LITELLM_LOCAL_*`` switches below).
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["LITELLM_OFFLINE_SWITCHES", "import_litellm", "keep_litellm_offline"]


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
    """Import LiteLLM without its network side effects: no data fetched from GitHub, no telemetry."""
    keep_litellm_offline()
    import litellm

    litellm.telemetry = False
    # Let Instructor do the retrying, with the validation error in the prompt; LiteLLM's own retries
    # would hide the attempts from the count memlayer reports.
    litellm.num_retries = 0
    litellm.suppress_debug_info = True
    return litellm


_UNPRICED: set[str] = set()  # models LiteLLM has no price for; asking again costs ~1 ms per call
