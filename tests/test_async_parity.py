"""Every public sync method of the manager and the agent has an async twin with the same parameters."""

from __future__ import annotations

import inspect

import pytest

from memlayer import Agent, MemoryManager

SYNC_ONLY = {"join_db"}  # wiring, not I/O a caller waits on


def _public(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in vars(cls).items()
        if inspect.isfunction(member) and not name.startswith("_") and name not in SYNC_ONLY
    }


@pytest.mark.parametrize("cls", [MemoryManager, Agent])
def test_every_sync_method_has_an_async_twin_with_the_same_parameters(cls: type) -> None:
    methods = _public(cls)
    sync = sorted(n for n in methods if not (n.startswith("a") and n[1:] in methods))
    missing = [f"a{n}" for n in sync if f"a{n}" not in methods]
    assert missing == []
    for name in sync:
        twin = methods[f"a{name}"]
        assert inspect.iscoroutinefunction(twin) or inspect.isasyncgenfunction(twin), f"a{name}"
        mine, theirs = inspect.signature(methods[name]), inspect.signature(twin)  # type: ignore[arg-type]
        assert list(theirs.parameters.values()) == list(mine.parameters.values()), name
        assert not any(p.kind is p.VAR_KEYWORD for p in mine.parameters.values()), f"{name} takes **kwargs"
