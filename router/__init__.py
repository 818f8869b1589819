"""The prefix-aware router: an OpenAI-compatible proxy that picks, per request, the engine
whose KV cache can reuse the most of the prompt without overloading it."""
