"""``litllm serve`` as a user runs it: a subprocess on a local port, spoken to with the official openai client."""

from __future__ import annotations

import asyncio
import json
import time

import openai
import pytest
from serving import API_KEY, raw_request, start_server

from litllm.infer.textgen import stream_text
from litllm.model.model_dir import ModelDir
from litllm.model.templates import Alpaca

MODEL = "tiny-chat"  # the model directory's name


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def local(serve_model_dir):
    """The served model loaded in this process, to compute what the server should answer."""
    return ModelDir(serve_model_dir).load()


def greedy(local, prompt: str, n: int, stop=()) -> str:
    model, tokenizer = local
    return stream_text(model, tokenizer, prompt, max_new_tokens=n, temperature=0.0, top_k=None, stop=stop)


def test_lists_its_model(client):
    assert [m.id for m in client.models.list().data] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL


def test_chat_completion_uses_the_saved_template(client, local):
    messages = [{"role": "user", "content": "Name a colour."}]
    reply = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8, temperature=0)
    prompt = Alpaca().prompt(messages)
    assert reply.object == "chat.completion" and reply.model == MODEL
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == greedy(local, prompt, 8, Alpaca().stop)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.prompt_tokens == len(local[1].encode(prompt))
    assert reply.usage.completion_tokens == 8
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 8


def test_streamed_chat_completion_is_the_same_reply_in_chunks(client):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    whole = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=10, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=messages,
            max_tokens=10,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # it did stream
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_the_stream_is_server_sent_events_ending_with_done(server):
    body = {"model": MODEL, "prompt": "ROMEO:", "max_tokens": 3, "stream": True}
    status, text = raw_request(server.url + "/v1/completions", json.dumps(body).encode())
    assert status == 200
    events = [e for e in text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["object"] == "text_completion"


def test_completion_with_sampling_settings(client, local):
    reply = client.completions.create(model=MODEL, prompt="ROMEO:", max_tokens=6, temperature=0)
    assert reply.choices[0].text == greedy(local, "ROMEO:", 6)
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (len(local[1].encode("ROMEO:")), 6)
    kwargs = dict(model=MODEL, prompt="KING:", max_tokens=12, temperature=1.0, top_p=0.9, n=2, seed=5)
    first, again = client.completions.create(**kwargs), client.completions.create(**kwargs)
    assert [c.text for c in first.choices] == [c.text for c in again.choices]  # the seed fixes the sample
    assert first.choices[0].text != first.choices[1].text  # the n choices differ
    assert first.usage.completion_tokens == 24
    stop = first.choices[0].text[3:6]
    stopped = client.completions.create(**kwargs, stop=[stop])
    assert stopped.choices[0].text == first.choices[0].text[: first.choices[0].text.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"


def error_of(call) -> tuple[int, dict]:
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    return caught.value.status_code, caught.value.body


def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(client, server):
    def chat(**kwargs):
        args = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **kwargs}
        return lambda: client.chat.completions.create(**args)

    status, body = error_of(chat(model="gpt-4o"))
    assert status == 404 and body["code"] == "model_not_found" and body["param"] == "model"
    status, body = error_of(chat(max_tokens=-1))
    assert status == 400 and body["param"] == "max_tokens"
    status, body = error_of(chat(temperature=2.5))
    assert status == 400 and body["param"] == "temperature"
    status, body = error_of(chat(messages=[{"role": "user", "content": "word " * 300}]))
    assert status == 400 and body["code"] == "context_length_exceeded"
    status, body = error_of(chat(max_tokens=250))  # the prompt leaves less room than that
    assert status == 400 and body["code"] == "context_length_exceeded"
    status, body = error_of(lambda: client.completions.create(model=MODEL, prompt="x", stop=list("abcde")))
    assert status == 400 and body["param"] == "stop"
    status, body = raw_request(server.url + "/v1/chat/completions", b'{"model": "tiny-chat", "messages": [')
    assert status == 400 and set(body["error"]) == {"message", "type", "param", "code"}
    status, body = raw_request(server.url + "/v1/nothing")
    assert status == 404 and "error" in body
    assert client.completions.create(model=MODEL, prompt="x", max_tokens=2).usage.completion_tokens == 2


def test_the_api_key_is_checked_on_every_request(server):
    bad = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    for path in ["/v1/models", "/health"]:
        status, body = raw_request(server.url + path, key=None)
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, page = raw_request(server.url + "/", key=None)  # the page holds no data; it asks for the key
    assert status == 200 and "<title>litllm chat</title>" in page


def test_sixteen_concurrent_streams_are_decoded_together(server, client):
    def request(i: int) -> dict:
        content = f"Tell tale number {i}."
        return dict(
            model=MODEL, messages=[{"role": "user", "content": content}], max_tokens=8 + i, temperature=0.7, seed=i
        )

    async def one(aclient: openai.AsyncOpenAI, i: int) -> tuple[str, str | None, int]:
        stream = await aclient.chat.completions.create(
            **request(i), stream=True, stream_options={"include_usage": True}
        )
        text, reason, used = "", None, -1
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                reason = chunk.choices[0].finish_reason or reason
            else:
                used = chunk.usage.completion_tokens
        return text, reason, used

    async def all_of_them():
        aclient = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=120)
        return await asyncio.wait_for(asyncio.gather(*(one(aclient, i) for i in range(16))), timeout=120)

    results = asyncio.run(all_of_them())
    _, health = raw_request(server.url + "/health")
    assert 2 <= health["largest_batch"] <= 4  # --max_batch 4: batched, and never more than the cap
    assert health["running"] == health["waiting"] == 0
    for i, (text, reason, used) in enumerate(results):
        # the same seeded request alone and not streamed: the same text, finish and token count
        alone = client.chat.completions.create(**request(i))
        assert (text, reason, used) == (
            alone.choices[0].message.content,
            alone.choices[0].finish_reason,
            alone.usage.completion_tokens,
        )
        assert used == 8 + i if reason == "length" else used < 8 + i


def test_a_client_that_goes_away_frees_its_slot(server, client):
    before = raw_request(server.url + "/health")[1]["decode_steps"]
    # 16 choices of 240 tokens with 4 slots: ~4 x 239 decode steps if nobody noticed the hang-up (a tiny
    # model decodes a step in about a millisecond, so one choice alone could finish before the server notices)
    stream = client.completions.create(model=MODEL, prompt="", max_tokens=240, n=16, stream=True)
    next(iter(stream))
    stream.close()  # hang up after the first chunk
    deadline = time.monotonic() + 60
    while (health := raw_request(server.url + "/health")[1])["running"] + health["waiting"] and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert health["running"] == health["waiting"] == 0
    assert health["decode_steps"] - before < 2 * 239  # the waiting choices never started


def test_the_server_stops_cleanly_mid_stream_and_binds_localhost_by_default(serve_model_dir, tmp_path):
    log = tmp_path / "server.log"
    server = start_server(serve_model_dir, log)  # no key, default host
    assert server.url.startswith("http://127.0.0.1:")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    stream = client.completions.create(model=MODEL, prompt="", max_tokens=200, stream=True)
    next(iter(stream))  # a request is being generated when the server is told to stop
    assert server.stop() == 0
    assert "Traceback" not in log.read_text()
