"""A vocabulary split over 2 tensor-parallel processes (gloo, loopback) gives the whole vocabulary's numbers.

``vocab_run.py`` (two processes, never inside pytest) splits a tiny GPT-2-style model with a tied head and
a vocabulary of 301 (slices of 151 and 150 tokens) and compares with the whole model: the cross-entropy
(mean, sum, per position, with unlabelled positions and the last token of the vocabulary as a label),
DPO's sequence log-probs, the logits gathered for sampling, and the gradients of the tied embedding (from
both the lookup and the head) and of a block; with sequence parallelism too (an odd length padded and cut
back, learned positions, a norm's weight whose gradient sums both halves of the sequence).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from process_runs import process_env

pytestmark = pytest.mark.integration
RUN = Path(__file__).with_name("vocab_run.py")


def test_vocabulary_and_sequence_parallel_loss_logits_and_gradients_equal_the_whole_model(tmp_path):
    out = tmp_path / "diffs.json"
    env = process_env(WORLD_SIZE="2")
    procs = [
        subprocess.Popen(
            [sys.executable, str(RUN), str(out)],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    diffs = json.loads(out.read_text())
    assert diffs["loss_mean"] <= 1e-5 and diffs["loss_none"] <= 1e-5, diffs
    assert diffs["loss_sum"] <= 1e-4, diffs  # a sum of ~45 losses of ~5.7
    assert diffs["logprobs"] <= 1e-4 and diffs["sampling_logits"] <= 1e-5, diffs
    assert diffs["grad_scale"] > 1e-2  # gradients worth comparing
    assert diffs["grad_tied_embedding"] <= 1e-6 and diffs["grad_block"] <= 1e-6, diffs
    # Sequence parallelism: 15 tokens padded to 16, each process's blocks see 8 positions.
    assert diffs["sequence_parallel_block_positions"] == 8
    assert diffs["sequence_parallel_loss"] <= 1e-5, diffs
    assert diffs["sequence_parallel_grad_norm_weight"] <= 1e-6, diffs
    assert diffs["sequence_parallel_grad_positions"] <= 1e-6, diffs


def test_the_compiled_loss_equals_the_eager_one():
    """``model.compile`` compiles the loss too (``cross_entropy(compiled=True)``): the same mean, sum and
    per-position losses and the same gradient, unlabelled positions left out."""
    import torch

    from litllm.parallel.vocab import cross_entropy

    torch.manual_seed(0)
    logits = torch.randn(2, 6, 50, dtype=torch.bfloat16, requires_grad=True)
    labels = torch.randint(0, 50, (2, 6))
    labels[0, :2] = -100
    for reduction in ("mean", "sum", "none"):
        eager = cross_entropy(logits, labels, reduction)
        (eager_grad,) = torch.autograd.grad(eager.sum(), logits)
        compiled = cross_entropy(logits, labels, reduction, compiled=True)
        (compiled_grad,) = torch.autograd.grad(compiled.sum(), logits)
        assert compiled.dtype == torch.float32
        torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(compiled_grad.float(), eager_grad.float(), rtol=1e-2, atol=1e-3)  # bf16 gradients
