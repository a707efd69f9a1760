"""Long-term memory: `MemoryManager`, typed one-call extraction, its prompt and operation schema, and its evaluation."""
