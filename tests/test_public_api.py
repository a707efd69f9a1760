"""The public surface: every name in memlayer.__all__ resolves and is documented; every other module is internal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import memlayer
from memlayer._internal import errors


def test_all_is_sorted_and_resolves() -> None:
    assert memlayer.__all__ == sorted(memlayer.__all__)
    for name in memlayer.__all__:
        assert getattr(memlayer, name) is not None


def test_every_error_is_exported() -> None:
    assert set(errors.__all__) <= set(memlayer.__all__)
    for name in errors.__all__:
        assert issubclass(getattr(memlayer, name), memlayer.MemlayerError)


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        memlayer.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


PACKAGE = Path(memlayer.__file__).parent
# The modules a user may import: the package, the testing kit, and Agno's import paths. Anything else is
# under memlayer/_internal, which the Python ecosystem reads as "not the API".
PUBLIC_MODULES = {
    "memlayer",
    "memlayer.__main__",
    "memlayer.agent",
    "memlayer.db",
    "memlayer.db.duckdb",
    "memlayer.db.postgres",
    "memlayer.db.schemas",
    "memlayer.memory",
    "memlayer.models",
    "memlayer.models.anthropic",
    "memlayer.models.google",
    "memlayer.models.litellm",
    "memlayer.models.message",
    "memlayer.models.ollama",
    "memlayer.models.openai",
    "memlayer.testing",
    "memlayer.testing.plugin",
    "memlayer.testing.postgres",
    "memlayer.testing.scripted",
    "memlayer.tools",
    "memlayer.tools.memory",
}


def _modules_outside_internal() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "_internal" not in parts:
            found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_every_module_outside_internal_is_a_known_public_one() -> None:
    assert _modules_outside_internal() == PUBLIC_MODULES


def test_the_api_reference_documents_exactly_what_memlayer_exports() -> None:
    reference = (PACKAGE.parent / "docs" / "reference" / "memlayer.md").read_text()
    documented = set(re.findall(r"^::: memlayer\.(\w+)$", reference, flags=re.M))
    assert documented == set(memlayer.__all__)
