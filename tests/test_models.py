"""Model strings: one parser, one error with a suggestion, and a provider's mode."""

from __future__ import annotations

import subprocess
import sys

import pytest

from memlayer import ConfigError, ModelSpec, parse_model
from memlayer._internal.llm.litellm import check_provider, import_litellm, known_providers


@pytest.mark.parametrize(
    ("text", "provider", "name", "litellm_model"),
    [
        ("openai:gpt-4o", "openai", "gpt-4o", "openai/gpt-4o"),
        ("openai/gpt-4o", "openai", "gpt-4o", "openai/gpt-4o"),
        ("anthropic:claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),
        ("gemini:gemini-2.5-flash", "gemini", "gemini-2.5-flash", "gemini/gemini-2.5-flash"),
        ("google:gemini-2.5-flash", "gemini", "gemini-2.5-flash", "gemini/gemini-2.5-flash"),
        ("ollama:llama3.2:3b", "ollama", "llama3.2:3b", "ollama/llama3.2:3b"),
        ("ollama/llama3.2:3b", "ollama", "llama3.2:3b", "ollama/llama3.2:3b"),
        (
            "openrouter:meta-llama/llama-3-70b",
            "openrouter",
            "meta-llama/llama-3-70b",
            "openrouter/meta-llama/llama-3-70b",
        ),
        (" OpenAI:gpt-4o ", "openai", "gpt-4o", "openai/gpt-4o"),
    ],
)
def test_both_forms_parse(text: str, provider: str, name: str, litellm_model: str) -> None:
    spec = parse_model(text)
    assert (spec.provider, spec.name, spec.litellm_model, str(spec)) == (
        provider,
        name,
        litellm_model,
        f"{provider}:{name}",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("opnai:gpt-4o", "unknown provider 'opnai' in model 'opnai:gpt-4o'; did you mean 'openai:gpt-4o'"),
        ("antropic/claude-sonnet-4-5", "did you mean 'anthropic:claude-sonnet-4-5'"),
        ("gpt-4o", "must name a provider and a model.*did you mean 'openai:gpt-4o'"),
        ("claude-sonnet-4-5", "did you mean 'anthropic:claude-sonnet-4-5'"),
        ("openai:", "must name a provider and a model"),
        (":gpt-4o", "must name a provider and a model"),
        ("", "must be a string"),
        ("nosuchprovider:model", "unknown provider 'nosuchprovider'"),
    ],
)
def test_malformed_strings_raise_one_typed_error(text: str, message: str) -> None:
    # The form is checked by parse_model; the provider before the first request (after LiteLLM's import).
    with pytest.raises(ConfigError, match=message):
        check_provider(parse_model(text))


def test_a_non_string_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be a string"):
        parse_model(42)  # type: ignore[arg-type]


def test_mode_follows_the_provider_and_can_be_overridden() -> None:
    assert parse_model("openai:gpt-4o").instructor_mode == "tools"
    assert parse_model("anthropic:claude-sonnet-4-5").instructor_mode == "tools"
    assert parse_model("ollama:llama3.2").instructor_mode == "json_schema"
    # An OpenAI-compatible local server (llama.cpp) ignores tool_choice but enforces a JSON schema.
    assert parse_model("openai/qwen1.5b", api_base="http://127.0.0.1:8765/v1").instructor_mode == "json_schema"
    assert parse_model("openai:gpt-4o", mode="md_json").instructor_mode == "md_json"
    with pytest.raises(ConfigError, match="mode must be one of"):
        parse_model("openai:gpt-4o", mode="xml")  # type: ignore[arg-type]


def test_connection_settings_and_extra_kwargs_ride_along() -> None:
    spec = parse_model("openai:gpt-4o", api_base="http://x/v1", api_key="sk-test", timeout=30)
    assert (spec.api_base, spec.api_key, spec.extra) == ("http://x/v1", "sk-test", {"timeout": 30})
    assert "sk-test" not in repr(spec)
    again = parse_model(spec, mode="json")
    assert isinstance(again, ModelSpec) and (again.mode, again.api_key) == ("json", "sk-test")


def test_provider_names_are_litellms() -> None:
    providers = known_providers()
    assert {"openai", "anthropic", "gemini", "ollama", "vertex_ai", "bedrock"} <= providers
    assert providers == frozenset(import_litellm().provider_list)


def test_import_memlayer_is_light() -> None:
    code = (
        "import sys, time\nt = time.perf_counter()\nimport memlayer\nfrom memlayer import MemoryManager, DuckDb\n"
        "print(round(time.perf_counter() - t, 3), 'litellm' in sys.modules, 'instructor' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    seconds, litellm_loaded, instructor_loaded = run.stdout.split()
    assert (litellm_loaded, instructor_loaded) == ("False", "False")
    assert float(seconds) < 2.0  # a loose bound for a loaded CI machine; benchmarks/ measures it
