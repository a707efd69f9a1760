"""Model calls through LiteLLM: model strings, the typed extraction call, chat with tools, embeddings.

Nothing here imports LiteLLM until a model is first called (`memlayer._internal.llm.litellm`).
"""
