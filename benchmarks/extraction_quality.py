"""Extraction quality on the labelled scenarios: ``memlayer eval``, with the local model as default.

Run (local server up: ``../shared/tools/local-llm start``)::

    uv run python benchmarks/extraction_quality.py                       # qwen1.5b on 127.0.0.1:8765
    uv run python benchmarks/extraction_quality.py --split heldout --failures
    uv run python benchmarks/extraction_quality.py --model openai:gpt-4o-mini   # a hosted model, with its key

It prints a table per category, per split (``tune``: the scenarios the prompt was tuned on;
``heldout``: never looked at while tuning) and overall. The scenarios are memlayer/data/scenarios.
"""

from __future__ import annotations

import os
import sys

from memlayer._internal.cli import app

LOCAL = ["--model", "openai/qwen1.5b", "--api-base", os.environ.get("LOCAL_LLM_API_BASE", "http://127.0.0.1:8765/v1")]
LOCAL += ["--api-key", "local"]  # llama-server checks no key; LiteLLM's openai provider wants one

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--model" or a.startswith("--model=") for a in args):
        args = LOCAL + args
    app(["eval", *args])
