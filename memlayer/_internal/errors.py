"""The errors memlayer raises, split by whose fault they are.

```
MemlayerError              anything memlayer raises on purpose
├── ConfigError            the caller's mistake: a bad model string, a missing user_id,
│                          an unknown memory id, conflicting options
├── ModelError             the provider failed, or its reply never validated
│                          (carries the attempts and the last reply)
├── StorageError           the database: locked by another process, a failed migration
│   └── DatabaseLockedError  the file is held by another process
└── CassetteError          no recorded answer for a request, and how to re-record
```

No LiteLLM, Instructor or DuckDB exception crosses the public API: each is wrapped with
``raise ... from exc`` so the original stays on ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "CassetteError",
    "ConfigError",
    "DatabaseLockedError",
    "MemlayerError",
    "ModelError",
    "StorageError",
]


class MemlayerError(Exception):
    """Base class of every error memlayer raises on purpose."""


class ConfigError(MemlayerError, ValueError):
    """The caller asked for something that cannot work; fix the call."""


class ModelError(MemlayerError):
    """The model or its provider failed; nothing was written.

    ``attempts`` is how many calls were made, ``last_reply`` the raw text of the last one
    (``None`` when the provider never answered).
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        attempts: int = 0,
        last_reply: str | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.attempts = attempts
        self.last_reply = last_reply


class StorageError(MemlayerError):
    """The database could not do what was asked; nothing was written."""


class DatabaseLockedError(StorageError):
    """Another process holds the DuckDB file open for writing."""


class CassetteError(MemlayerError):
    """A test made a request that its cassette does not hold."""
