"""Record real LLM traffic once, replay it offline, with no network and no key: a feature memlayer ships.

`use_cassette` replays (or records) the HTTP traffic of a block; ``memlayer demo`` and the pytest
plugin (`memlayer.testing`) are built on it.
"""

from .format import REDACTED, secret_name
from .replay import (
    RECORD_ENV,
    ActiveCassette,
    active_cassette,
    explain_unrecorded,
    normalise_mode,
    record_mode,
    unrecorded_request,
    use_cassette,
)

__all__ = [
    "RECORD_ENV",
    "REDACTED",
    "ActiveCassette",
    "active_cassette",
    "explain_unrecorded",
    "normalise_mode",
    "record_mode",
    "secret_name",
    "unrecorded_request",
    "use_cassette",
]
