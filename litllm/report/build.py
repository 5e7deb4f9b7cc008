"""The report card of a run directory: ``report.md`` (images beside it) and ``report.html`` (images inline).

For a pipeline (``litllm run``): one section per stage in pipeline order; for a plain ``litllm fit`` or
``litllm finetune`` directory: that run alone. Everything comes from files the runs wrote (see
``litllm.report.facts``), so ``litllm report DIR`` can rebuild it at any time, also during a run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from litllm.report.facts import RunFacts, machine, read_run
from litllm.report.render import Block, Code, Heading, Image, Table, Text, to_html, to_markdown


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"


def number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def pipeline_settings(root: Path) -> dict[str, Any]:
    """``pipeline.json``, which ``litllm run`` writes into its root: the stages in order and the report settings."""
    try:
        return json.loads((root / "pipeline.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def find_runs(root: Path, stage_names: list[str] | None = None) -> list[RunFacts]:
    """The runs to report: the named stages, the stage directories under ``root``, or ``root`` itself."""
    if stage_names:
        return [read_run(root / name, name) for name in stage_names if (root / name).is_dir()]
    stages = [read_run(p) for p in sorted(root.iterdir()) if (p / "stage.json").is_file()] if root.is_dir() else []
    if stages:
        return sorted(stages, key=lambda r: r.record.get("started", 0.0))
    if (root / "logs").is_dir() or (root / "run.json").is_file():
        return [read_run(root)]
    raise FileNotFoundError(f"{root} holds no run: expected stage directories (litllm run) or logs/ (litllm fit)")


def _kind(run: RunFacts) -> str:
    verb = run.record.get("run")
    if verb:
        return verb
    module = run.run.get("module", "")
    return {"PretrainModule": "fit", "SFTModule": "finetune", "DPOModule": "finetune dpo"}.get(module, "fit")


def headline(run: RunFacts) -> str:
    """The one number that says what a stage achieved."""
    kind = _kind(run)
    if kind == "fit" and run.last("val/loss") is not None:
        bpb = run.last("val/bpb")
        return f"held-out loss {number(run.last('val/loss'))}" + (f", {number(bpb)} bits/byte" if bpb else "")
    if kind == "finetune dpo" and run.last("val/accuracy") is not None:
        return (
            f"held-out preference accuracy {number(run.last('val/accuracy'))}, "
            f"reward margin {number(run.last('val/reward_margin'))}"
        )
    if kind.startswith("finetune") and run.last("val/loss") is not None:
        return f"held-out loss {number(run.first('val/loss'))} -> {number(run.last('val/loss'))}"
    if kind == "prepare":
        prepared = _prepare_report(run)
        if prepared:
            return f"{prepared.get('documents_out', 0):,} documents, {prepared.get('tokens_out', 0):,} tokens"
    if kind == "evaluate" and run.evaluations:
        parts = []
        for model, result in run.evaluations.items():
            if result.get("checked"):
                parts.append(f"{model} {result['correct']}/{result['checked']} right")
            elif "bits_per_byte" in result:
                parts.append(f"{model} {number(result['bits_per_byte'])} bits/byte")
        return "; ".join(parts)
    if kind == "tokenizer train":
        sizes = [v for path in run.path.glob("*.json") if (v := _vocab_size(path))]
        return f"vocabulary {sizes[0]:,}" if sizes else ""
    return ""


def _vocab_size(path: Path) -> int | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    vocab = data.get("model", {}).get("vocab") if isinstance(data.get("model"), dict) else None
    return len(vocab) + len(data.get("added_tokens", [])) if vocab else None


def _prepare_report(run: RunFacts) -> dict[str, Any]:
    try:
        return json.loads((run.path / "prepared" / "report.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _wall_from_files(root: Path) -> float | None:
    """A plain run's training time: from ``run.json`` (written as fitting starts) to its exported model."""
    start, end = root / "run.json", root / "final"  # a directory's time is that of its newest entry
    if start.is_file() and end.is_dir() and end.stat().st_mtime > start.stat().st_mtime:
        return end.stat().st_mtime - start.stat().st_mtime
    return None


def summary(runs: list[RunFacts], cost_per_gpu_hour: float | None) -> Table:
    gpu = any(r.run.get("accelerator") == "cuda" for r in runs)
    headers = ["stage", "what", "status", "wall time", "steps", "tokens/s", "peak memory", "parameters", "result"]
    if gpu:
        headers += ["GPU-hours", "cost"]
    rows = []
    for run in runs:
        wall = run.record.get("wall_s") or _wall_from_files(run.path)
        params = run.run.get("parameters")
        trainable = run.run.get("trainable_parameters")
        if params and trainable and trainable != params:
            params_text = f"{params:,} ({trainable:,} trained)"
        else:
            params_text = f"{params:,}" if params else "-"
        memory = run.median("speed/peak_memory_gb")
        row = [
            run.name,
            _kind(run),
            run.record.get("status", "done" if (run.path / "final").is_dir() else "-"),
            duration(wall),
            str(run.steps) if run.steps is not None else "-",
            number(run.median("speed/tokens_per_sec"), 0),
            f"{memory:.2f} GB" if memory else "-",
            params_text,
            headline(run),
        ]
        if gpu:
            world = run.run.get("world_size", 1)
            hours = wall * world / 3600 if wall and run.run.get("accelerator") == "cuda" else None
            row += [number(hours, 2), f"{hours * cost_per_gpu_hour:,.2f}" if hours and cost_per_gpu_hour else "-"]
        rows.append(tuple(row))
    return Table(tuple(headers), tuple(rows), (3, 4, 5, 6))


def _part_cells(part: dict[str, Any]) -> tuple[str, str]:
    """A data part's samples and tokens as table cells (``streamed`` when it has no length)."""
    samples = f"{part['samples']:,}" if part.get("samples") is not None else "streamed"
    return samples, f"{part['tokens']:,}" if part.get("tokens") else "-"


def data_section(runs: list[RunFacts]) -> list[Block]:
    rows = []
    for run in runs:
        data = run.run.get("data")
        if data:
            train, val = data.get("train", {}), data.get("val", {})
            rows.append((run.name, data.get("layout", "-"), *_part_cells(train), *_part_cells(val)))
    blocks: list[Block] = []
    if rows:
        blocks.append(
            Table(
                ("stage", "layout", "train samples", "train tokens", "val samples", "val tokens"),
                tuple(rows),
                (2, 3, 4, 5),
            )
        )
    for run in runs:
        prepared = _prepare_report(run)
        if prepared:
            dropped = ", ".join(f"{k} {v:,}" for k, v in prepared.get("dropped", {}).items() if v) or "nothing"
            blocks.append(
                Text(
                    f"`{run.name}` read {prepared.get('documents_in', 0):,} documents and kept "
                    f"{prepared.get('documents_out', 0):,} ({prepared.get('tokens_out', 0):,} tokens); dropped by the "
                    f"filters: {dropped}; exact duplicates {prepared.get('exact_duplicates', 0):,}, near duplicates "
                    f"{prepared.get('near_duplicates', 0):,}."
                )
            )
    return blocks


def _validation_table(run: RunFacts) -> Table | None:
    keys = [k for k in ("val/loss", "val/bpb", "val/ppl", "val/accuracy", "val/reward_margin") if k in run.metrics]
    if not keys:
        return None
    steps = sorted({s for k in keys for s, _ in run.metrics[k]})
    values = {k: dict(run.metrics[k]) for k in keys}
    rows = tuple((str(s), *(number(values[k].get(s)) for k in keys)) for s in steps)
    return Table(("step", *keys), rows, tuple(range(len(keys) + 1)))


def stage_section(run: RunFacts) -> list[Block]:
    blocks: list[Block] = [Heading(f"{run.name} ({_kind(run)})", 3)]
    for command in run.record.get("commands", []):
        blocks.append(Code(command))
    run_facts = run.run
    if run_facts:
        blocks.append(
            Text(
                f"{run_facts.get('device', '?')}, {run_facts.get('world_size', 1)} process(es), precision "
                f"{run_facts.get('precision', '?')}; MFU {number(run.median('speed/mfu'))} (median; GPU only)."
            )
        )
    table = _validation_table(run)
    if table is not None:
        blocks.append(table)
    if run.loss_plot is not None:
        blocks.append(Image(run.loss_plot, f"{run.name} loss"))
    sample = run.last_sample
    if sample:
        blocks += [Text("The sample generated at the last validation:"), Code(sample[:1500])]
    if run.evaluations:
        blocks += evaluation_blocks(run)
    return blocks


def evaluation_blocks(run: RunFacts) -> list[Block]:
    """Each model's score on the held-out text, and its greedy answers to the fixed prompts side by side."""
    blocks: list[Block] = []
    models = list(run.evaluations)
    scored = [(m, r) for m, r in run.evaluations.items() if "bits_per_byte" in r]
    if scored:
        rows = tuple((m, number(r["loss"]), number(r["bits_per_byte"]), f"{r['tokens']:,}") for m, r in scored)
        blocks.append(Table(("model", "loss (nats/token)", "bits per byte", "tokens"), rows, (1, 2, 3)))
    answered = [m for m in models if run.evaluations[m].get("answers")]
    if answered:
        scores = ", ".join(
            f"{m} {run.evaluations[m]['correct']}/{run.evaluations[m]['checked']} right, "
            f"word share {run.evaluations[m].get('word_share', 0):.2f}"
            for m in answered
        )
        blocks.append(Text(f"Greedy answers to the fixed prompts ({scores}):"))
        first = run.evaluations[answered[0]]["answers"]
        rows = []
        for i, item in enumerate(first):
            prompt = item["instruction"] + (f" [{item['input']}]" if item.get("input") else "")
            cells = [prompt, " / ".join(item.get("expect", [])) or "-"]
            for model in answered:
                answer = run.evaluations[model]["answers"][i]
                mark = {True: "right: ", False: "wrong: ", None: ""}[answer.get("correct")]
                cells.append(mark + answer["answer"][:200])
            rows.append(tuple(cells))
        blocks.append(Table(("prompt", "expected", *answered), tuple(rows)))
    return blocks


def report_blocks(root: Path, runs: list[RunFacts], settings: dict[str, Any], title: str) -> list[Block]:
    blocks: list[Block] = [Heading(title, 1)]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    blocks.append(Text(f"Written {when} from the files under `{root}`; rebuild it with `litllm report {root}`."))
    blocks += [Heading("Summary"), summary(runs, settings.get("cost_per_gpu_hour"))]
    expected = settings.get("expected")
    if expected:
        rows = tuple((str(k), str(v)) for k, v in expected.items())
        blocks += [Heading("Expected (estimates, not measured here)"), Table(("stage", "expected"), rows)]
    blocks += [Heading("Machine and software"), Table(("", ""), tuple(machine().items()))]
    data = data_section(runs)
    if data:
        blocks += [Heading("Data"), *data]
    blocks.append(Heading("Stages"))
    for run in runs:
        blocks += stage_section(run)
    return blocks


def write_report(root: str | Path) -> Path:
    """Write ``report.md`` and ``report.html`` into ``root``; return the Markdown file's path."""
    root = Path(root)
    piped = pipeline_settings(root)
    runs = find_runs(root, piped.get("stages"))
    settings = dict(piped.get("report") or {})
    title = settings.get("title") or f"litllm report card: {root.name}"
    blocks = report_blocks(root, runs, settings, title)
    (root / "report.md").write_text(to_markdown(blocks, root), encoding="utf-8")
    (root / "report.html").write_text(to_html(blocks, title), encoding="utf-8")
    return root / "report.md"
