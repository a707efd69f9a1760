"""The public surface: every name in memlayer.__all__ resolves, and the list is sorted."""

from __future__ import annotations

import pytest

import memlayer
from memlayer import errors


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
