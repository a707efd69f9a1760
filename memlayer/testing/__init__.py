"""Offline tests for memory-using code: record real LLM traffic once and replay it, or script replies."""

from .._internal.cassettes import RECORD_ENV, record_mode, use_cassette
from .scripted import ScriptedModel, ToolCalls, scripted_model, tool_calls

__all__ = ["RECORD_ENV", "ScriptedModel", "ToolCalls", "record_mode", "scripted_model", "tool_calls", "use_cassette"]
