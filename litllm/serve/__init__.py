"""``litllm serve``: an OpenAI-compatible HTTP server for a model directory, with continuous batching.

``kv_slots`` (a per-sequence key/value cache and the forward pass over it), ``engine`` (the batching
loop on its own thread), ``prompts`` (requests to token ids), ``protocol`` (the OpenAI request and
response shapes), ``app`` (the FastAPI routes), ``cli`` (the verb) and ``chat.html`` (the chat page).
"""
