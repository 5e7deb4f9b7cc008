"""The HTTP side: FastAPI routes in OpenAI's shape over one ``Engine``.

Handlers run on the event loop and never touch the model: they turn a request into token ids,
submit them to the engine and await its events (``events``), answering with one JSON body or,
with ``stream: true``, server-sent events ending with ``data: [DONE]``. Every error, ours or
FastAPI's (malformed JSON, a field out of range, an unknown route), is answered in OpenAI's error
shape; none of them stops the server.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from litllm.model.templates import Template
from litllm.serve.engine import Engine, Event, Sampling
from litllm.serve.prompts import chat_text, encode, sampling_for
from litllm.serve.protocol import APIError, ChatRequest, CompletionRequest, Reply, error_body, now, usage

OPEN_PATHS = {("GET", "/")}
"""What answers without the API key: the chat page itself holds no data (it asks for the key)."""


def create_app(engine: Engine, model_name: str, template: Template | None, api_key: str | None = None) -> FastAPI:
    """The server's app; it starts the engine's thread at startup and stops it at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine.start()
        yield
        engine.stop()

    app = FastAPI(title="litllm serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    created = now()

    @app.middleware("http")
    async def check_key(request: Request, call_next):
        if api_key is not None and (request.method, request.url.path) not in OPEN_PATHS:
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                body = error_body("Incorrect API key provided.", "invalid_request_error", None, "invalid_api_key")
                return JSONResponse(body, status_code=401)
        return await call_next(request)

    @app.exception_handler(APIError)
    async def api_error(request: Request, err: APIError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0]
        loc = [str(part) for part in first.get("loc", ()) if part != "body"]
        if first.get("type") == "json_invalid":
            message, param = "The request body is not valid JSON.", None
        else:
            param = ".".join(loc) or None
            message = f"Invalid value for '{param}': {first.get('msg')}" if param else str(first.get("msg"))
        return JSONResponse(error_body(message, "invalid_request_error", param, None), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(err.detail), "invalid_request_error"), status_code=err.status_code)

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(files("litllm.serve").joinpath("chat.html").read_text(encoding="utf-8"))

    @app.get("/health")
    async def health() -> dict:
        running, waiting = engine.load
        return {
            "status": "ok",
            "model": model_name,
            "running": running,
            "waiting": waiting,
            "decode_steps": engine.steps,
            "largest_batch": engine.max_rows,
        }

    def model_card() -> dict:
        return {"id": model_name, "object": "model", "created": created, "owned_by": "litllm"}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{name:path}")
    async def model(name: str) -> dict:
        check_model(name)
        return model_card()

    def check_model(name: str) -> None:
        if name != model_name:
            raise APIError(
                404,
                f"The model '{name}' does not exist (this server serves '{model_name}').",
                "model",
                "model_not_found",
            )

    @app.post("/v1/chat/completions")
    async def chat_completions(request: ChatRequest):
        check_model(request.model)
        prompt = encode(engine.tokenizer, chat_text(request.messages, template))
        max_tokens = request.max_completion_tokens or request.max_tokens
        sampling = sampling_for(request, [prompt], engine.context, "messages", max_tokens)
        if template is not None:
            sampling = replace(sampling, stop=template.stop + sampling.stop)
        return await respond(Reply(True, model_name), [prompt], sampling, request)

    @app.post("/v1/completions")
    async def completions(request: CompletionRequest):
        check_model(request.model)
        prompts = [encode(engine.tokenizer, text) for text in request.prompts()]
        sampling = sampling_for(request, prompts, engine.context, "prompt", request.max_tokens)
        return await respond(Reply(False, model_name), prompts, sampling, request)

    async def respond(reply: Reply, prompts: list[list[int]], sampling: Sampling, request) -> object:
        n = request.n or 1
        prompt_tokens = sum(len(p) for p in prompts)
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            chunks = stream(reply, events(engine, prompts, sampling, n), len(prompts) * n, prompt_tokens, include_usage)
            return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        total = len(prompts) * n
        texts, reasons, tokens = [""] * total, [None] * total, [0] * total
        async for event in events(engine, prompts, sampling, n):
            if event.error:
                raise APIError(500, event.error, None, None, "server_error")
            texts[event.index] += event.text
            reasons[event.index] = event.finish_reason
            tokens[event.index] = event.completion_tokens
        return reply.body(texts, reasons, usage(prompt_tokens, sum(tokens)))

    return app


async def events(engine: Engine, prompts: list[list[int]], sampling: Sampling, n: int) -> AsyncIterator[Event]:
    """The engine's events for ``n`` choices of each prompt (choice ``p * n + i``), until all have finished.

    Leaving early (the client went away) cancels the choices still running, which frees their slots.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()

    def sink_for(offset: int):
        def sink(event: Event) -> None:
            event = replace(event, index=event.index + offset)
            with suppress(RuntimeError):  # the event loop has closed (shutdown): nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, event)

        return sink

    handles = [engine.submit(prompt, sampling, sink_for(p * n), n) for p, prompt in enumerate(prompts)]
    left = len(prompts) * n
    try:
        while left:
            event = await queue.get()
            left -= event.finish_reason is not None
            yield event
    finally:
        if left:
            for handle in handles:
                handle.cancel()


async def stream(
    reply: Reply, source: AsyncIterator[Event], choices: int, prompt_tokens: int, include_usage: bool
) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chunk format; the last line is ``data: [DONE]``."""

    def sse(data: dict) -> str:
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    if reply.chat:  # every chat choice opens with the assistant's role
        for i in range(choices):
            yield sse(reply.chunk(i, "", role=True))
    tokens = [0] * choices
    try:
        async for event in source:
            tokens[event.index] = event.completion_tokens
            if event.error:
                yield sse(error_body(event.error, "server_error"))
                break
            if event.text:
                yield sse(reply.chunk(event.index, event.text))
            if event.finish_reason:
                yield sse(reply.chunk(event.index, None, event.finish_reason))
        else:
            if include_usage:
                yield sse(reply.usage_chunk(usage(prompt_tokens, sum(tokens))))
    finally:
        await source.aclose()
    yield "data: [DONE]\n\n"
