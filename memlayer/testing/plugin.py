"""The pytest plugin (entry point ``pytest11``): record LLM traffic once, replay it offline.

Installed with memlayer, it does nothing until a test asks for it:

```python
import pytest

@pytest.mark.memlayer_cassette              # cassettes/<test module>/<test name>.json
def test_remembers(memory_manager):
    ...

def test_other(memlayer_cassette):           # the same, as a fixture (the vcrpy cassette)
    ...
```

``pytest --memlayer-record=none|once|new|rewrite`` (default ``none``, or ``MEMLAYER_RECORD``) chooses
between replaying only, recording missing cassettes, adding new requests, and re-recording. The
cassette folder is the ini option ``memlayer_cassette_dir`` (default ``cassettes``, under rootdir).

The plugin changes no process state when it is loaded: ``os.environ`` is changed only inside a test
that uses a cassette, where LiteLLM is pointed at its bundled data (its ``LITELLM_LOCAL_*`` switches,
a variable already set is left alone) and restored when the test ends. memlayer sets the same switches
itself before it imports LiteLLM; a test suite that imports LiteLLM on its own sets them in its conftest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .._internal.cassettes import RECORD_ENV, normalise_mode, record_mode, use_cassette
from .._internal.llm.litellm import LITELLM_OFFLINE_SWITCHES

__all__ = ["memlayer_cassette"]

_MARKER = "memlayer_cassette"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memlayer", "memlayer cassettes")
    group.addoption(
        "--memlayer-record",
        choices=["none", "once", "new", "rewrite"],
        default=None,
        help=f"none: replay only (default; or ${RECORD_ENV}); once: record missing cassettes; "
        "new: also record requests a cassette lacks; rewrite: re-record every cassette used",
    )
    parser.addini("memlayer_cassette_dir", "folder of memlayer cassettes, under rootdir", default="cassettes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(path=None, note=None): replay this test's LLM traffic from a cassette "
        "(default cassettes/<module>/<test>.json); record with --memlayer-record",
    )


def cassette_path(request: pytest.FixtureRequest) -> Path:
    marker = request.node.get_closest_marker(_MARKER)
    root = Path(str(request.config.rootpath))
    explicit = (marker.kwargs.get("path") or (marker.args[0] if marker.args else None)) if marker else None
    if explicit:
        return root / str(explicit)
    folder = root / str(request.config.getini("memlayer_cassette_dir"))
    return folder / Path(str(request.node.fspath)).stem / f"{request.node.name}.json"


@pytest.fixture
def memlayer_cassette(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The test's cassette, replayed (or recorded) around the test; fails on unrecorded requests."""
    option = request.config.getoption("--memlayer-record")
    mode = normalise_mode(option) if option else record_mode()
    marker = request.node.get_closest_marker(_MARKER)
    note = marker.kwargs.get("note") if marker else None
    with pytest.MonkeyPatch.context() as env:
        # A replayed test must not reach the network: LiteLLM fetches its price list (at import) and
        # other data (on first use) from GitHub unless these say to use its bundled copies.
        for name in LITELLM_OFFLINE_SWITCHES:
            if name not in os.environ:
                env.setenv(name, "True")
        with use_cassette(cassette_path(request), mode=mode, test_id=request.node.nodeid, note=note) as cassette:
            yield cassette


@pytest.fixture(autouse=True)
def _memlayer_cassette_marker(request: pytest.FixtureRequest) -> None:
    # The marker is sugar for the fixture; a test without it is left alone.
    if request.node.get_closest_marker(_MARKER) is not None:
        request.getfixturevalue("memlayer_cassette")
