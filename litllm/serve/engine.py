"""Continuous batching: one thread owns the model and decodes every running sequence together.

Each loop iteration (``Engine.step``) first lets waiting sequences join while slots are free (their
prompts run through the model together, right-padded, in groups of at most ``prefill_tokens``
padded tokens: the prefill, which also samples each one's first token), then runs one batched decode step over all running sequences, each at its own position in
its own cache slot (``kv_slots.forward_rows``) and sampled with its own settings and random
generator. A sequence leaves as soon as it stops (end of text, a stop string, ``max_tokens`` or
the end of the context), freeing its slot for the next waiting one at the next iteration.

Results go out through a per-request ``sink`` callable, called on the engine thread with an
``Event`` per generated token; the server turns these into HTTP responses on its event loop.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from litllm.infer.generate import sample_next
from litllm.infer.textgen import TextStream
from litllm.model.gpt import GPT
from litllm.model.tokenizer import Tokenizer
from litllm.serve.kv_slots import SlotCache, forward_rows

log = logging.getLogger("litllm.serve")


@dataclass(frozen=True)
class Sampling:
    """How one request samples: the OpenAI parameters, already checked by the server."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Event:
    """What one generated token of choice ``index`` adds; ``finish_reason`` is set on the choice's last event."""

    index: int
    text: str
    completion_tokens: int
    token: int | None = None
    """The token id generated (None on an error event)."""
    finish_reason: str | None = None
    """``"stop"`` (end of text or a stop string), ``"length"`` (``max_tokens`` or the context), ``"error"``."""
    error: str | None = None


Sink = Callable[[Event], None]


@dataclass(eq=False)
class Sequence:
    """One choice being generated: its prompt, settings, cache slot and detokenizer."""

    index: int
    prompt: list[int]
    sampling: Sampling
    sink: Sink
    stream: TextStream
    generator: torch.Generator
    slot: int = -1
    length: int = 0  # positions of the slot filled so far
    last: int = 0  # the newest token, fed at the next decode step
    generated: int = 0
    cancelled: bool = False
    done: bool = False


@dataclass
class Handle:
    """A submitted request: ``cancel()`` stops its choices (e.g. when the client went away)."""

    sequences: list[Sequence] = field(default_factory=list)

    def cancel(self) -> None:
        for seq in self.sequences:
            seq.cancelled = True


class Engine:
    """The batching loop around one model.

    Args:
        model: The model, in eval mode, on its device.
        tokenizer: Its tokenizer (for stop strings and the text of each token).
        max_batch: The most sequences decoded at once (cache slots); more wait their turn.
        prefill_tokens: The most tokens (rows x longest prompt) one prefill forward pass takes; a
            prompt longer than this still runs, alone.
    """

    def __init__(self, model: GPT, tokenizer: Tokenizer, max_batch: int = 8, prefill_tokens: int = 2048) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.model, self.tokenizer, self.max_batch = model, tokenizer, max_batch
        self.prefill_tokens = prefill_tokens
        self.device = next(model.parameters()).device
        self.cache = SlotCache(model, max_batch)
        self.context = self.cache.max_len
        # A heap: the lowest free slot is handed out first, so running sequences tend to sit in
        # consecutive slots, which a decode step reads without copying (see kv_slots.forward_rows).
        self._free = list(range(max_batch))
        self._waiting: deque[Sequence] = deque()
        self._running: list[Sequence] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.steps = 0  # decode steps run (batched forward passes), for tests and statistics
        self.max_rows = 0  # the largest batch a decode step has run
        self.prefills = 0  # prefill forward passes run

    # ------------------------------------------------------------------ the request side (any thread)
    def submit(self, prompt: list[int], sampling: Sampling, sink: Sink, n: int = 1) -> Handle:
        """Queue ``n`` choices continuing ``prompt``; their events go to ``sink`` (on the engine thread)."""
        if not prompt:
            raise ValueError("empty prompt")
        if len(prompt) + sampling.max_tokens > self.context:
            raise ValueError(f"{len(prompt)} prompt + {sampling.max_tokens} new tokens exceed {self.context}")
        handle = Handle()
        for i in range(n):
            seed = random.getrandbits(63) if sampling.seed is None else sampling.seed + i
            handle.sequences.append(
                Sequence(
                    index=i,
                    prompt=list(prompt),
                    sampling=sampling,
                    sink=sink,
                    stream=TextStream(self.tokenizer, sampling.stop),
                    generator=torch.Generator(device=self.device).manual_seed(seed),
                )
            )
        with self._cond:
            self._waiting.extend(handle.sequences)
            self._cond.notify()
        return handle

    @property
    def load(self) -> tuple[int, int]:
        """(running, waiting) sequences."""
        with self._cond:
            return len(self._running), len(self._waiting)

    # ------------------------------------------------------------------ the thread
    def start(self) -> Engine:
        self._thread = threading.Thread(target=self._loop, name="litllm-engine", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop; sequences still queued or running end with an error event."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            left = list(self._waiting) + self._running
            self._waiting.clear()
            self._running.clear()
        for seq in left:
            self._finish(seq, "error", error="the server is shutting down")

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._waiting and not self._running:
                    self._cond.wait()
                if self._stopping:
                    return
            self.step()

    # ------------------------------------------------------------------ one iteration
    def step(self) -> None:
        """Admit waiting sequences into free slots (prefill), then one decode step for all running ones."""
        try:
            admitted = self._admit()
            if admitted:
                self._prefill(admitted)
            self._running = [s for s in self._running if not self._retire(s)]
            if self._running:
                self._decode()
                self._running = [s for s in self._running if not self._retire(s)]
        except Exception as err:  # a failed forward pass ends the requests in it, not the server
            log.exception("engine step failed")
            for seq in self._running:
                if not seq.done:
                    self._finish(seq, "error", error=f"generation failed: {err}")
            self._running = [s for s in self._running if not self._retire(s)]

    def _admit(self) -> list[Sequence]:
        admitted = []
        with self._cond:
            while self._waiting and self._free:
                seq = self._waiting.popleft()
                if seq.cancelled:
                    continue
                seq.slot = heapq.heappop(self._free)
                admitted.append(seq)
            self._running.extend(admitted)
        return admitted

    def _retire(self, seq: Sequence) -> bool:
        """Free the slot of a finished or cancelled sequence; True if it left."""
        if not (seq.done or seq.cancelled):
            return False
        with self._cond:
            heapq.heappush(self._free, seq.slot)
        return True

    def _prefill(self, seqs: list[Sequence]) -> None:
        """Run the prompts of newly admitted sequences through the model and sample each one's first token."""
        for group in prefill_groups(seqs, self.prefill_tokens):
            width = max(len(s.prompt) for s in group)
            tokens = torch.zeros(len(group), width, dtype=torch.long)
            for i, seq in enumerate(group):
                tokens[i, : len(seq.prompt)] = torch.tensor(seq.prompt, dtype=torch.long)
            slots = torch.tensor([s.slot for s in group], device=self.device)
            last = torch.tensor([len(s.prompt) - 1 for s in group], device=self.device)
            starts = torch.zeros(len(group), dtype=torch.long, device=self.device)
            logits = forward_rows(self.model, self.cache, slots, tokens.to(self.device), starts, last=last)
            self.prefills += 1
            for i, seq in enumerate(group):
                seq.length = len(seq.prompt)
                self._accept(seq, logits[i : i + 1])

    def _decode(self) -> None:
        rows = self._running = sorted(self._running, key=lambda s: s.slot)  # consecutive slots: no copy
        tokens = torch.tensor([[s.last] for s in rows], dtype=torch.long, device=self.device)
        slots = torch.tensor([s.slot for s in rows], device=self.device)
        starts = torch.tensor([s.length for s in rows], device=self.device)
        logits = forward_rows(self.model, self.cache, slots, tokens, starts, last=torch.zeros_like(starts))
        self.steps += 1
        self.max_rows = max(self.max_rows, len(rows))
        for i, seq in enumerate(rows):
            seq.length += 1
            self._accept(seq, logits[i : i + 1])

    def _accept(self, seq: Sequence, logits: torch.Tensor) -> None:
        """Sample the next token of ``seq`` from its logits (1, V) and pass on what it adds."""
        s = seq.sampling
        token = int(sample_next(logits, s.temperature, s.top_k, s.top_p, seq.generator))
        seq.last = token
        seq.generated += 1
        text = seq.stream.push(token)
        if seq.stream.stopped:
            self._finish(seq, "stop", text, token)
        elif seq.generated >= s.max_tokens or seq.length >= self.context:
            self._finish(seq, "length", text + seq.stream.finish(), token)
        else:
            seq.sink(Event(seq.index, text, seq.generated, token))

    def _finish(
        self, seq: Sequence, reason: str, text: str = "", token: int | None = None, error: str | None = None
    ) -> None:
        seq.done = True
        seq.sink(Event(seq.index, text, seq.generated, token, reason, error))


def prefill_groups(seqs: list[Sequence], max_tokens: int) -> list[list[Sequence]]:
    """Split ``seqs`` into prefill batches of similar prompt lengths, each at most ``max_tokens`` padded tokens."""
    groups: list[list[Sequence]] = []
    for seq in sorted(seqs, key=lambda s: len(s.prompt)):
        # sorted by length, so this prompt is the group's longest: the padded size is rows x its length
        if groups and (len(groups[-1]) + 1) * len(seq.prompt) <= max_tokens:
            groups[-1].append(seq)
        else:
            groups.append([seq])
    return groups
