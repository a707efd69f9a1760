"""`Agent`: a chat model with tools, session history and long-term memory; its run loop, tools and memory tools."""
