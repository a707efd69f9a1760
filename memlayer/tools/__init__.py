"""Agno's import paths for toolkits: ``from memlayer.tools.memory import MemoryTools``."""
