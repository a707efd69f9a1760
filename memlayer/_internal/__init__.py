"""memlayer's implementation: not the API, and it may change in any release.

The API is what ``memlayer`` exports, ``memlayer.testing``, and Agno's import paths
(``memlayer.agent``, ``memlayer.memory``, ``memlayer.models``, ``memlayer.tools.memory``).
"""
