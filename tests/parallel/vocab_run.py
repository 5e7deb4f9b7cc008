"""One process of the vocabulary-parallel check (``test_vocab.py`` starts two, never inside pytest).

    RANK=r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=P python vocab_run.py OUT.json

Builds the same tiny GPT-2-style model (tied head, a vocabulary of 301: the two slices differ in size) in
every process, splits one copy with litllm's tensor-parallel plan over both processes, and compares with
the whole model: the loss (mean, sum, per position), DPO's sequence log-probs, the gradients of the tied
embedding and of a block, the logits gathered for sampling; then the same with sequence parallelism on an
odd length. Rank 0 writes the largest differences.
"""

from __future__ import annotations

import copy
import json
import os
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F


def main(out: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh

    from litllm.infer.generate import last_logits
    from litllm.model.config import ModelConfig
    from litllm.model.gpt import GPT
    from litllm.parallel.tensor import parallelize
    from litllm.parallel.vocab import cross_entropy, is_vocab_parallel
    from litllm.train.dpo import sequence_logprobs

    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (2,), mesh_dim_names=("tensor_parallel",))
    torch.manual_seed(0)
    config = ModelConfig.from_name("tiny-gpt2", vocab_size=301, dropout=0.0)
    whole = GPT(config)
    split = copy.deepcopy(whole)
    parallelize(split, mesh["tensor_parallel"])
    ids = torch.randint(0, 301, (3, 16))
    labels = torch.roll(ids, -1, dims=1)
    labels[0, :5] = -100  # unlabelled positions (a prompt)
    labels[1, -1] = 300  # the last token of the vocabulary (the smaller slice's end)

    logits, reference = split(ids), whole(ids)
    assert is_vocab_parallel(logits) and logits.to_local().size(-1) == (151 if dist.get_rank() == 0 else 150)
    diffs = {}
    for reduction in ("mean", "sum", "none"):
        want = F.cross_entropy(reference.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction=reduction)
        got = cross_entropy(logits, labels, reduction=reduction)
        diffs[f"loss_{reduction}"] = float((got.detach().flatten() - want.detach().flatten()).abs().max())
    diffs["logprobs"] = float(
        (sequence_logprobs(logits, labels) - sequence_logprobs(reference, labels)).detach().abs().max()
    )
    diffs["sampling_logits"] = float((last_logits(logits) - reference[:, -1]).detach().abs().max())

    cross_entropy(logits, labels).backward()
    F.cross_entropy(reference.flatten(0, 1), labels.flatten(), ignore_index=-100).backward()
    tied = split.wte.weight.grad.full_tensor()
    diffs["grad_tied_embedding"] = float((tied - whole.wte.weight.grad).abs().max())
    proj = split.blocks[0].attn.proj.weight.grad.full_tensor()
    diffs["grad_block"] = float((proj - whole.blocks[0].attn.proj.weight.grad).abs().max())
    diffs["grad_scale"] = float(whole.wte.weight.grad.abs().max())
    # Sequence parallelism on top: an odd length (15 tokens, padded to 16 and cut back), learned positions,
    # dropout off. Each process's blocks see its half of the padded sequence.
    sequence = copy.deepcopy(whole)
    sequence.zero_grad()
    parallelize(sequence, mesh["tensor_parallel"], sequence_parallel=True)
    seen = []
    sequence.blocks[1].register_forward_pre_hook(lambda module, args: seen.append(args[0].size(1)))
    odd_ids, odd_labels = ids[:, :15], labels[:, :15]
    got = cross_entropy(sequence(odd_ids), odd_labels)
    want = F.cross_entropy(whole(odd_ids).flatten(0, 1), odd_labels.flatten(), ignore_index=-100)
    diffs["sequence_parallel_loss"] = float((got - want).detach().abs())
    diffs["sequence_parallel_block_positions"] = seen[0]
    whole.zero_grad()
    got.backward()
    want.backward()
    grad = sequence.blocks[0].norm_1.weight.grad.full_tensor()  # summed over both halves of the sequence
    diffs["sequence_parallel_grad_norm_weight"] = float((grad - whole.blocks[0].norm_1.weight.grad).abs().max())
    grad = sequence.wpe.weight.grad.full_tensor()
    diffs["sequence_parallel_grad_positions"] = float((grad - whole.wpe.weight.grad).abs().max())
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump(diffs, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
    os._exit(0)
