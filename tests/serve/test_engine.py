"""The batching engine, driven step by step in this process (no server)."""

from __future__ import annotations

import pytest
import torch

from litllm.infer.generate import generate_tokens
from litllm.model.config import ModelConfig
from litllm.model.gpt import GPT
from litllm.serve.engine import Engine, Event, Sampling, Sequence, prefill_groups
from litllm.serve.kv_slots import SlotCache, forward_rows


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [
        ("tiny-gpt2", {}),
        ("tiny-llama", {}),
        ("tiny-mistral", {}),
        # the speed-run options: a soft cap small enough to change every logit, ReLU², QK-norm
        ("tiny-llama", {"logit_softcap": 0.5, "mlp": "relu2", "qk_norm": True, "tie_embeddings": False}),
    ],
)
def test_rows_at_their_own_positions_match_the_full_forward_pass(preset, overrides):
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name(preset, **overrides)).eval()
    a, b = torch.randint(0, 512, (1, 40)), torch.randint(0, 512, (1, 25))
    cache = SlotCache(model, 3)
    # a is prefilled with 30 tokens in slot 2, b with 10 in slot 0; then both decode one token a step
    got_a = [forward_rows(model, cache, torch.tensor([2]), a[:, :30], torch.tensor([0]))[0]]
    got_b = [forward_rows(model, cache, torch.tensor([0]), b[:, :10], torch.tensor([0]))[0]]
    for s in range(10):
        pair = torch.stack([a[0, 30 + s], b[0, 10 + s]])[:, None]
        logits = forward_rows(model, cache, torch.tensor([2, 0]), pair, torch.tensor([30 + s, 10 + s]))
        got_a.append(logits[0])
        got_b.append(logits[1])
    with torch.no_grad():
        # 40 positions > tiny-mistral's window of 16: the sliding window is applied per row
        torch.testing.assert_close(torch.cat(got_a), model(a)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(torch.cat(got_b), model(b)[0, :20], atol=1e-5, rtol=1e-5)


class Collect:
    """A sink that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1].finish_reason is not None


@pytest.fixture(scope="module")
def model_and_tokenizer(small_tokenizer):
    torch.manual_seed(0)
    return GPT(ModelConfig.from_name("tiny-llama")).eval(), small_tokenizer


def run_until_done(engine: Engine, sinks: list[Collect], joins: dict[int, list] | None = None) -> None:
    """Step until every sink has finished; ``joins[k]`` are (prompt, sampling, sink) submitted before step k."""
    joins = joins or {}
    for step in range(1000):
        for prompt, sampling, sink in joins.get(step, []):
            engine.submit(prompt, sampling, sink)
        if all(s.finished for s in sinks) and step > max(joins, default=-1):
            return
        engine.step()
    raise AssertionError("the engine did not finish")


def test_greedy_output_is_the_same_alone_batched_and_in_plain_generation(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    greedy = Sampling(max_tokens=12, temperature=0.0)
    prompts = [
        tokenizer.encode(t) for t in ["ROMEO: my lord", "JULIET:", "First Citizen:\nBefore we proceed any further"]
    ]
    alone = []
    for prompt in prompts:
        sink = Collect()
        run_until_done(Engine(model, tokenizer, max_batch=1), [sink], {0: [(prompt, greedy, sink)]})
        alone.append([e.token for e in sink.events])
        expected = generate_tokens(model, torch.tensor([prompt]), 12, temperature=0.0)
        assert alone[-1] == [int(t) for t in expected]
    # batched: joining at different steps, so the rows sit at different positions of their slots
    engine = Engine(model, tokenizer, max_batch=3)
    sinks = [Collect() for _ in prompts]
    joins = {0: [(prompts[0], greedy, sinks[0])], 3: [(prompts[1], greedy, sinks[1])]}
    joins[5] = [(prompts[2], greedy, sinks[2])]
    run_until_done(engine, sinks, joins)
    assert [[e.token for e in s.events] for s in sinks] == alone
    assert engine.max_rows == 3  # they did decode together


def test_prompts_joining_together_are_prefilled_in_one_padded_pass_with_the_same_output(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    greedy = Sampling(max_tokens=10, temperature=0.0)
    texts = ["ROMEO: my lord", "JULIET:", "First Citizen:\nBefore we proceed any further", "KING"]
    prompts = [tokenizer.encode(t) for t in texts]
    assert len({len(p) for p in prompts}) == 4  # four different lengths: padded to the longest
    alone = [[int(t) for t in generate_tokens(model, torch.tensor([p]), 10, temperature=0.0)] for p in prompts]
    engine = Engine(model, tokenizer, max_batch=4)
    sinks = [Collect() for _ in prompts]
    run_until_done(engine, sinks, {0: [(p, greedy, s) for p, s in zip(prompts, sinks, strict=True)]})
    assert [[e.token for e in s.events] for s in sinks] == alone
    assert engine.prefills == 1 and engine.max_rows == 4
    # a budget of padded tokens splits them into groups of similar length, same output
    lengths = sorted(len(p) for p in prompts)
    engine = Engine(model, tokenizer, max_batch=4, prefill_tokens=2 * lengths[1])
    sinks = [Collect() for _ in prompts]
    run_until_done(engine, sinks, {0: [(p, greedy, s) for p, s in zip(prompts, sinks, strict=True)]})
    assert [[e.token for e in s.events] for s in sinks] == alone
    assert 1 < engine.prefills < 4
    groups = prefill_groups([Sequence(0, [0] * n, greedy, Collect(), None, None) for n in (9, 3, 4, 8)], 16)
    assert [[len(s.prompt) for s in g] for g in groups] == [[3, 4], [8], [9]]  # 3 rows x 8 > 16 tokens: a new group


def test_rows_in_scattered_slots_and_last_position_logits():
    torch.manual_seed(0)
    model = GPT(ModelConfig.from_name("tiny-gpt2")).eval()
    a, b = torch.randint(0, 512, (1, 12)), torch.randint(0, 512, (1, 7))
    cache = SlotCache(model, 4)
    padded = torch.cat([a, torch.cat([b, torch.zeros(1, 5, dtype=torch.long)], dim=1)])
    # slots 3 and 1: not consecutive, so the keys and values are gathered
    first = forward_rows(model, cache, torch.tensor([3, 1]), padded, torch.tensor([0, 0]), last=torch.tensor([11, 6]))
    nxt = forward_rows(model, cache, torch.tensor([3, 1]), torch.tensor([[5], [9]]), torch.tensor([12, 7]))
    with torch.no_grad():
        torch.testing.assert_close(first, torch.stack([model(a)[0, -1], model(b)[0, -1]]), atol=1e-5, rtol=1e-5)
        want_a = model(torch.cat([a, torch.tensor([[5]])], dim=1))[0, -1]
        want_b = model(torch.cat([b, torch.tensor([[9]])], dim=1))[0, -1]
    torch.testing.assert_close(nxt[:, -1], torch.stack([want_a, want_b]), atol=1e-5, rtol=1e-5)


def test_seeded_sampling_does_not_depend_on_the_batch(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompt = tokenizer.encode("KING:")
    sampled = Sampling(max_tokens=10, temperature=1.0, top_p=0.9, seed=7)
    alone = Collect()
    run_until_done(Engine(model, tokenizer, max_batch=1), [alone], {0: [(prompt, sampled, alone)]})
    engine = Engine(model, tokenizer, max_batch=2)
    other, again = Collect(), Collect()
    run_until_done(
        engine, [other, again], {0: [(prompt, Sampling(10, 1.0, seed=1), other)], 2: [(prompt, sampled, again)]}
    )
    assert [e.token for e in again.events] == [e.token for e in alone.events]
    assert [e.token for e in other.events] != [e.token for e in alone.events]


def test_more_requests_than_slots_wait_and_all_finish_with_their_token_counts(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    engine = Engine(model, tokenizer, max_batch=2)
    sinks = [Collect() for _ in range(5)]
    for i, sink in enumerate(sinks):
        engine.submit(tokenizer.encode("To be"), Sampling(max_tokens=3 + i, temperature=0.5, seed=i), sink)
    assert engine.load == (0, 5)
    run_until_done(engine, sinks)
    assert engine.max_rows == 2 and engine.load == (0, 0)
    for i, sink in enumerate(sinks):
        assert [e.completion_tokens for e in sink.events] == list(range(1, 4 + i))
        assert sink.events[-1].finish_reason == "length"


def test_stop_strings_end_a_choice_and_cancelled_requests_leave(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompt = tokenizer.encode("ROMEO:")
    free = Collect()
    run_until_done(Engine(model, tokenizer), [free], {0: [(prompt, Sampling(20, 0.0), free)]})
    text = "".join(e.text for e in free.events)
    stop = text[4:7]
    stopped = Collect()
    run_until_done(Engine(model, tokenizer), [stopped], {0: [(prompt, Sampling(20, 0.0, stop=(stop,)), stopped)]})
    assert "".join(e.text for e in stopped.events) == text[: text.index(stop)]
    assert stopped.events[-1].finish_reason == "stop"

    engine = Engine(model, tokenizer, max_batch=1)
    sink = Collect()
    handle = engine.submit(prompt, Sampling(20, 0.0), sink)
    engine.step()  # prefill and one decode step: two tokens
    handle.cancel()
    engine.step()
    assert engine.load == (0, 0) and len(sink.events) == 2  # the slot is free again, nothing more was sent


def test_a_threaded_engine_serves_and_stops(model_and_tokenizer):
    import threading

    model, tokenizer = model_and_tokenizer
    engine = Engine(model, tokenizer, max_batch=4).start()
    done = threading.Event()
    sink = Collect()

    def on_event(event: Event) -> None:
        sink(event)
        if event.finish_reason:
            done.set()

    engine.submit(tokenizer.encode("Hark"), Sampling(5, 0.0), on_event)
    assert done.wait(30)
    waiting = Collect()
    engine.stop()
    assert not engine._thread.is_alive()
    engine.submit(tokenizer.encode("Hark"), Sampling(5, 0.0), waiting)
    engine.stop()  # a request left after the loop stopped gets an error, not silence
    assert waiting.events[-1].finish_reason == "error"
