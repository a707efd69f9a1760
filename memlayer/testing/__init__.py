"""Offline tests for memory-using code: record real LLM traffic once and replay it, or script replies."""

from .cassettes import RECORD_ENV, record_mode, use_cassette
from .scripted import ScriptedModel, scripted_model

__all__ = ["RECORD_ENV", "ScriptedModel", "record_mode", "scripted_model", "use_cassette"]
