"""The chat page at ``/`` in a real browser (Debian's chromium driven by playwright): a reply streams in."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from serving import API_KEY

from litllm.infer.textgen import stream_text
from litllm.model.model_dir import ModelDir
from litllm.model.templates import Alpaca

CHROMIUM = Path("/usr/bin/chromium")  # .ci/run installs it with apt
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Records the reply bubble's text length each time the log changes while the reply is being written.
RECORD_LENGTHS = """() => {
  window.lengths = [];
  new MutationObserver(() => {
    const reply = document.querySelector(".msg.assistant");
    if (reply) window.lengths.push(reply.textContent.length);
  }).observe(document.getElementById("log"), {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def page(server):
    assert CHROMIUM.exists(), "chromium is missing: apt-get install -y chromium (.ci/run does)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.on("dialog", lambda dialog: dialog.accept(API_KEY))  # the page asks for the server's key
        page.goto(server.url + "/")
        yield page
        browser.close()


def send(page, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def test_a_typed_message_gets_a_streamed_reply_and_reset_clears_the_conversation(page, serve_model_dir):
    model, tokenizer = ModelDir(serve_model_dir).load()
    expect(page.locator("#model")).to_have_text("tiny-chat")  # the key was asked for and accepted
    page.fill("#temperature", "0")
    page.fill("#max_tokens", "24")
    page.evaluate(RECORD_LENGTHS)
    # The tiny model writes 24 tokens in a few milliseconds, and chunks that arrive together are read (and
    # drawn) together: a slow link (2 kB/s, a few hundred bytes per chunk) spreads them out, as a real model would.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": 2000, "uploadThroughput": -1},
    )

    send(page, "Name a colour.")
    expect(page.locator(".msg.assistant.done")).to_have_count(1, timeout=60_000)
    reply = page.locator(".msg.assistant").first.text_content()
    first = [{"role": "user", "content": "Name a colour."}]
    expected = stream_text(model, tokenizer, Alpaca().prompt(first), 24, 0.0, None, stop=Alpaca().stop)
    assert reply == expected and reply
    # the text arrived in pieces, not at once: the bubble showed a part of the reply before all of it
    lengths = page.evaluate("window.lengths")
    assert any(0 < n < len(reply) for n in lengths), lengths
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )

    # the second turn is sent with the first one and its reply: the conversation is kept
    send(page, "Another one?")
    expect(page.locator(".msg.assistant.done")).to_have_count(2)
    second = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "Another one?"}]
    expected = stream_text(model, tokenizer, Alpaca().prompt(second), 24, 0.0, None, stop=Alpaca().stop)
    assert page.locator(".msg.assistant").nth(1).text_content() == expected

    page.click("#reset")
    expect(page.locator(".msg")).to_have_count(0)
    send(page, "Name a colour.")
    expect(page.locator(".msg.assistant.done")).to_have_count(1)
    assert page.locator(".msg.assistant").first.text_content() == reply  # a fresh conversation again
