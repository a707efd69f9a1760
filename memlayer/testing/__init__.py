"""Offline tests for memory-using code: record real LLM traffic once, replay it without a network."""

from .cassettes import RECORD_ENV, record_mode, use_cassette

__all__ = ["RECORD_ENV", "record_mode", "use_cassette"]
