"""Report cards from the files runs leave: sections, numbers, both formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from litllm.cli import main
from litllm.report.build import duration, find_runs, write_report
from litllm.report.facts import read_metrics

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def fake_run(root: Path, rows: list[dict], **files) -> Path:
    logs = root / "logs" / "version_0"
    logs.mkdir(parents=True)
    keys = sorted({k for row in rows for k in row})
    lines = [",".join(keys)] + [",".join(str(row.get(k, "")) for k in keys) for row in rows]
    (logs / "metrics.csv").write_text("\n".join(lines) + "\n")
    (root / "loss.png").write_bytes(PNG)
    for name, content in files.items():
        (root / name.replace("_", ".", 1)).write_text(content if isinstance(content, str) else json.dumps(content))
    return root


def test_a_plain_fit_directory_gets_a_report(tmp_path, capsys):
    rows = [
        {"step": 9, "speed/tokens_per_sec": 1000.0, "train/loss": 5.0},
        {"step": 19, "speed/tokens_per_sec": 3000.0, "val/loss": 4.5, "val/bpb": 2.4},
        {"step": 29, "speed/tokens_per_sec": 2000.0, "val/loss": 4.25, "val/bpb": 2.25},
    ]
    run = {
        "module": "PretrainModule",
        "device": "cpu: x",
        "world_size": 1,
        "parameters": 2197632,
        "precision": "32-true",
    }
    run["data"] = {"layout": "blocks", "train": {"samples": 10, "tokens": 1280}, "val": {"samples": 2, "tokens": 256}}
    fake_run(tmp_path, rows, run_json=run, samples_txt="--- step 10 ---\nold\n--- step 30 ---\nROMEO: hi")
    main(["report", str(tmp_path)])
    report = (tmp_path / "report.md").read_text()
    assert "held-out loss 4.250, 2.250 bits/byte" in report  # the last validation
    assert "| 2,000 |" in report  # median tokens/s
    assert "2,197,632" in report and "| 1,280 |" in report
    assert "ROMEO: hi" in report and "old" not in report  # the last sample only
    assert "![" in report and "(loss.png)" in report
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    assert "report.md" in capsys.readouterr().out


def test_a_pipeline_report_lists_stages_in_order_with_gpu_cost(tmp_path):
    for i, (name, verb, rows) in enumerate(
        [
            ("pretrain", "fit", [{"step": 5, "val/loss": 3.0, "val/bpb": 1.5}]),
            ("dpo", "finetune dpo", [{"step": 5, "val/accuracy": 0.9, "val/reward_margin": 0.4}]),
        ]
    ):
        record = {"run": verb, "status": "done", "wall_s": 7200.0, "started": i, "commands": [f"litllm {verb}"]}
        facts = {"accelerator": "cuda", "world_size": 8, "device": "cuda: H100"}
        fake_run(tmp_path / name, rows, stage_json=record, run_json=facts)
    evaluate = tmp_path / "evaluate"
    evaluate.mkdir()
    (evaluate / "stage.json").write_text(json.dumps({"run": "evaluate", "status": "done", "started": 3}))
    answer = {
        "instruction": "Capital of France?",
        "input": "",
        "answer": "Paris.",
        "expect": ["Paris"],
        "correct": True,
    }
    (evaluate / "dpo.json").write_text(json.dumps({"answers": [answer], "correct": 1, "checked": 1, "word_share": 1.0}))
    (tmp_path / "pipeline.json").write_text(
        json.dumps(
            {
                "stages": ["pretrain", "dpo", "evaluate"],
                "report": {"cost_per_gpu_hour": 2.0, "expected": {"pretrain": "3 h"}},
            }
        )
    )
    write_report(tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert report.index("### pretrain (fit)") < report.index("### dpo (finetune dpo)")
    assert "held-out preference accuracy 0.900, reward margin 0.400" in report
    assert "| 16.00 | 32.00 |" in report  # 2 h x 8 GPUs, at 2.0 per GPU-hour
    assert "Expected (estimates, not measured here)" in report and "dpo 1/1 right" in report
    assert "right: Paris." in report


def test_resumed_runs_join_their_logs_and_an_empty_directory_is_one_line(tmp_path, capsys):
    for version, rows in enumerate([["step,val/loss", "4,3.0", "8,2.5"], ["step,val/loss", "8,2.4", "12,2.0"]]):
        path = tmp_path / "logs" / f"version_{version}"
        path.mkdir(parents=True)
        (path / "metrics.csv").write_text("\n".join(rows) + "\n")
    assert read_metrics(tmp_path)["val/loss"] == [(4, 3.0), (8, 2.4), (12, 2.0)]
    with pytest.raises(FileNotFoundError, match="holds no run"):
        find_runs(tmp_path / "logs")
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path / "nothing")])
    assert "holds no run" in capsys.readouterr().err


def test_durations_read_like_a_person_writes_them():
    assert [duration(s) for s in (None, 42, 599, 3725)] == ["-", "42 s", "9 min 59 s", "1 h 2 min"]
