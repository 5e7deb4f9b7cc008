"""Samples during training: a short generation printed (and saved to ``samples.txt``) after each validation.

Under FSDP2 and tensor parallelism every process generates, since every forward pass is collective;
under pipeline and sequence parallelism each token is one forward pass of the padded context.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from litllm.parallel.tensor import SEQUENCE_PARALLEL
from litllm.parallel.vocab import whole_logits


class SampleGeneration(Callback):
    """Print (and save to ``samples.txt``) a short generation after each validation.

    Args:
        prompt: Text to continue; empty starts from end-of-text (a fresh document).
        max_new_tokens: Length of the sample.
        temperature: Sampling temperature (0 is greedy).
        top_k: Sample only among the k most likely tokens.
    """

    def __init__(
        self, prompt: str = "", max_new_tokens: int = 64, temperature: float = 0.8, top_k: int | None = 50
    ) -> None:
        self.prompt, self.max_new_tokens = prompt, max_new_tokens
        self.temperature, self.top_k = temperature, top_k

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.max_new_tokens <= 0:
            return
        tokenizer = getattr(pl_module, "tokenizer", None)
        if tokenizer is None:
            return
        if getattr(pl_module, "pipeline", None) is not None:
            text = self.sample_through_pipeline(pl_module, tokenizer)  # every process takes part
        elif getattr(pl_module.backbone, SEQUENCE_PARALLEL, False):
            text = self.sample_whole_context(pl_module, tokenizer)  # every process takes part
        else:
            # Under FSDP every forward pass gathers the shards from all processes, so every rank generates
            # (the same tokens, for the same number of steps); otherwise rank 0 alone.
            sharded = any(hasattr(p, "full_tensor") for p in pl_module.backbone.parameters())
            if not (trainer.is_global_zero or sharded):
                return
            text = self.sample(pl_module, tokenizer, fixed_length=sharded)
        if not trainer.is_global_zero:
            return
        if getattr(pl_module, "template", None) is not None:
            text = f"\n>>> {text}"  # an instruction and the model's answer, not a continuation
        pl_module.print(f"\n--- sample at step {trainer.global_step} ---\n{self.prompt}{text}\n---")
        out = Path(trainer.default_root_dir) / "samples.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a", encoding="utf-8") as f:
            f.write(f"--- step {trainer.global_step} ---\n{self.prompt}{text}\n")

    def prompt_ids(self, pl_module: L.LightningModule, tokenizer) -> list[int]:
        """The sample's prompt as token ids (through the chat template when the module has one)."""
        template = getattr(pl_module, "template", None)
        text = template.prompt([{"role": "user", "content": self.prompt}]) if template is not None else self.prompt
        return tokenizer.encode(text) if text else [tokenizer.eot_id]

    def sample_through_pipeline(self, pl_module: L.LightningModule, tokenizer) -> str:
        """``sample`` under pipeline parallelism: each new token is one forward pass of the whole context through
        the stages (no key/value cache: a stage holds a part of the model), sampled on the last stage and
        sent to every stage. Collective: every process runs it, for ``max_new_tokens`` steps."""
        pipeline = pl_module.pipeline
        return self.sample_fixed_shape(pl_module, tokenizer, pipeline.module, pipeline.logits, pipeline.from_last_stage)

    def sample_whole_context(self, pl_module: L.LightningModule, tokenizer) -> str:
        """``sample`` under sequence parallelism: each new token is one forward pass of the whole context, whose
        length the processes split (a key/value cache would feed them one token, which does not split).
        Collective: every process runs it and samples the same token from the same gathered logits."""
        model = pl_module.backbone
        return self.sample_fixed_shape(pl_module, tokenizer, model, model, lambda token: token)

    def sample_fixed_shape(self, pl_module: L.LightningModule, tokenizer, module, logits_of, share) -> str:
        """Generate with one forward pass per token of the context right-padded to the model's block size
        (causal: the padding changes no logit before it). ``logits_of(ids)``: the logits, or None on a process
        that does not sample; ``share(token)``: the token (a float scalar, -1 for none) every process uses."""
        from litllm.infer.generate import sample_next

        device = pl_module.device
        ids, new = self.prompt_ids(pl_module, tokenizer), []
        block = pl_module.config.block_size
        generator = torch.Generator(device=device).manual_seed(1234)
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                for _ in range(self.max_new_tokens):
                    context = (ids + new)[-block:]
                    x = torch.zeros(1, block, dtype=torch.long, device=device)  # one shape: one schedule
                    x[0, : len(context)] = torch.tensor(context, device=device)
                    logits = logits_of(x)
                    token = None
                    if logits is not None:
                        row = whole_logits(logits[:, len(context) - 1]).float()
                        finite = bool(torch.isfinite(row).all())
                        token = sample_next(row, self.temperature, self.top_k, None, generator) if finite else None
                        token = token.reshape(()).float() if token is not None else torch.tensor(-1.0)
                    token = int(share(token))
                    if token < 0:
                        return "(no sample: the model's output probabilities are not finite)"
                    new.append(token)
        finally:
            module.train(was_training)
        if tokenizer.eot_id in new:
            new = new[: new.index(tokenizer.eot_id)]
        return tokenizer.decode(new, skip_special_tokens=True)

    def sample(self, pl_module: L.LightningModule, tokenizer, fixed_length: bool = False) -> str:
        """Generate from the module's backbone; the text ends before the first end-of-text token.

        ``fixed_length`` always runs ``max_new_tokens`` forward passes (no stop at end-of-text), so that
        processes taking part in sharded forward passes make the same number of collective calls.
        """
        from litllm.infer.generate import generate

        model = pl_module.backbone
        ids = self.prompt_ids(pl_module, tokenizer)
        prompt = torch.tensor([ids], dtype=torch.long, device=pl_module.device)
        generator = torch.Generator(device=pl_module.device).manual_seed(1234)
        was_training = model.training
        model.eval()
        try:
            out = generate(
                model,
                prompt,
                self.max_new_tokens,
                temperature=self.temperature,
                top_k=self.top_k,
                eos_id=None if fixed_length else tokenizer.eot_id,
                generator=generator,
            )
        except RuntimeError as err:  # a diverging model's probabilities are not finite: report, do not crash
            if "probability tensor" not in str(err):
                raise
            return "(no sample: the model's output probabilities are not finite)"
        finally:
            model.train(was_training)
        new_ids = out[0, len(ids) :].tolist()
        if tokenizer.eot_id in new_ids:
            new_ids = new_ids[: new_ids.index(tokenizer.eot_id)]
        return tokenizer.decode(new_ids, skip_special_tokens=True)
