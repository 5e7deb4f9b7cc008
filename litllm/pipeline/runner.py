"""``litllm run``: the stages of a pipeline, each as its own ``litllm`` process, skipped when already done.

Every stage keeps a ``stage.json`` beside its outputs (fingerprint, status, command lines, wall time).
On a later run, a stage whose fingerprint is unchanged and whose outputs exist is reused; one that
stopped part-way (Ctrl-C, SIGTERM, a crash, ``kill -9``) is resumed with ``--ckpt_path last``; one whose
settings changed is run again, its old outputs moved aside (``<stage>.old-N``), never deleted. The report
card is rebuilt after every stage, so it can be opened during a long run.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from litllm.errors import ConfigError
from litllm.pipeline.commands import commands, fingerprint, output_of, outputs_exist, shell_line, stage_dir
from litllm.pipeline.spec import Pipeline, Stage
from litllm.prepare.worker import die_with_parent

RECORD = "stage.json"


def read_record(directory: Path) -> dict | None:
    """The ``stage.json`` of a stage directory, or None."""
    try:
        return json.loads((directory / RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_record(directory: Path, record: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, directory / RECORD)


def _move_aside(directory: Path) -> Path:
    n = 1
    while (aside := directory.with_name(f"{directory.name}.old-{n}")).exists():
        n += 1
    directory.rename(aside)
    return aside


def _has_checkpoint(directory: Path) -> bool:
    return any((directory / "checkpoints" / name).is_file() for name in ("last.ckpt", "interrupted.ckpt"))


# Passed on to the running stage: Ctrl-C, SIGTERM, and SLURM's requeue signal (``#SBATCH --signal=SIGUSR1@90``
# under ``srun litllm run``), which the stage turns into a checkpoint and ``scontrol requeue``; without a
# handler here SIGUSR1 would end ``litllm run`` itself.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


class StageProcess:
    """Runs one ``litllm`` command in its own process group and passes each signal of ``FORWARDED`` on to it once.

    Args:
        program: The command line the stage's arguments follow (default: this Python's ``-m litllm``).
    """

    def __init__(self, program: list[str] | None = None) -> None:
        self.program = program or [sys.executable, "-m", "litllm"]
        self.child: subprocess.Popen | None = None
        self.stopped_by: int | None = None

    def _forward(self, signum: int, frame) -> None:
        self.stopped_by = signum
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def run(self, command: list[str]) -> int:
        handlers = {s: signal.signal(s, self._forward) for s in FORWARDED}
        try:
            # Its own session: a terminal's Ctrl-C reaches only `litllm run`, which forwards it exactly once
            # (two interrupts could stop the stage in the middle of writing its checkpoint).
            # A killed `litllm run` takes its stage with it (SIGTERM: a training stage still checkpoints).
            self.child = subprocess.Popen(
                [*self.program, *command],
                start_new_session=True,
                preexec_fn=functools.partial(die_with_parent, signal.SIGTERM),
            )
            return self.child.wait()
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)


def _export_chat(pipeline: Pipeline, stage: Stage) -> Path:
    """Copy the chat stage's model directory to ``<out_dir>/chat`` (hard links where the disk allows)."""
    source, target = output_of(pipeline, stage), pipeline.out_dir / "chat"
    if target.exists():
        shutil.rmtree(target)

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy)
    return target


def _rebuild_report(pipeline: Pipeline) -> None:
    from litllm.report.build import write_report

    try:
        path = write_report(pipeline.out_dir)
        print(f"litllm run: report card updated: {path}", flush=True)
    except Exception as err:  # a report problem never stops or fails the training pipeline
        print(f"litllm run: warning: the report card could not be written ({type(err).__name__}: {err})", flush=True)


def plan_selection(pipeline: Pipeline, only: list[str] | None) -> set[str]:
    """The stages to run: all, or those named in ``--stages`` (each checked against the pipeline)."""
    if not only:
        return {s.name for s in pipeline.stages}
    for name in only:
        pipeline.stage(name)  # an unknown name is one line with the closest
    return set(only)


def run_pipeline(pipeline: Pipeline, only: list[str] | None = None, dry_run: bool = False) -> int:
    """Run (or with ``dry_run`` print) the pipeline's stages in order; return the exit code."""
    selected = plan_selection(pipeline, only)
    runs: dict[str, str] = {}  # stage -> identity of its finished run, for the fingerprints of later stages
    pipeline.out_dir.mkdir(parents=True, exist_ok=True)
    if not dry_run:  # what `litllm report` needs to rebuild the card without the recipe
        settings = {
            "config": str(pipeline.path),
            "stages": [s.name for s in pipeline.stages],
            "report": pipeline.report,
        }
        (pipeline.out_dir / "pipeline.json").write_text(json.dumps(settings, indent=2) + "\n")
    for stage in pipeline.stages:
        directory = stage_dir(pipeline, stage)
        said = f"litllm run: {stage.name}:"
        missing = [name for name in stage.upstream if name not in runs]
        if missing:
            raise ConfigError(
                f"{stage.name} needs {', '.join(missing)}, which has not finished: run it first "
                f"(add it to --stages, or leave --stages out)"
            )
        fp = fingerprint(pipeline, stage, runs)
        record = read_record(directory)
        done = bool(record and record.get("status") == "done" and outputs_exist(pipeline, stage))
        explicit = only is not None and stage.name in selected
        if stage.name not in selected:
            if done:
                print(f"{said} not selected; reusing its finished outputs in {directory}", flush=True)
                runs[stage.name] = f"{record['fingerprint']}@{record.get('finished')}"
            else:
                print(f"{said} not selected and not finished; skipped", flush=True)
            continue
        if done and record["fingerprint"] == fp and not explicit:
            print(f"{said} done earlier with the same inputs and settings; reusing {directory}", flush=True)
            runs[stage.name] = f"{fp}@{record.get('finished')}"
            continue
        resume = False
        if directory.exists() and not dry_run:
            if record and record.get("fingerprint") == fp and not done and stage.trains and _has_checkpoint(directory):
                resume = True
            elif any(directory.iterdir()):
                why = "run again (--stages)" if explicit and done else "inputs or settings changed"
                if record is None or record.get("status") != "done":
                    why = "an unfinished run with other settings" if record else "files of an unknown run"
                aside = _move_aside(directory)
                print(f"{said} {why}: the previous outputs are kept in {aside}", flush=True)
        steps = commands(pipeline, stage)
        if resume:
            steps = [[*steps[0], "--ckpt_path", "last"]]
            print(f"{said} stopped part-way earlier: resuming from its last checkpoint", flush=True)
        if dry_run:
            for command in steps:
                print(shell_line(command))
            runs[stage.name] = f"{fp}@dry-run"
            continue
        started = time.time()
        record = {
            "stage": stage.name,
            "run": stage.run,
            "fingerprint": fp,
            "status": "running",
            "commands": [shell_line(c) for c in steps],
            "started": started,
            "wall_s": (record or {}).get("wall_s", 0.0) if resume else 0.0,
        }
        _write_record(directory, record)
        for command in steps:
            print(f"\n$ {shell_line(command)}", flush=True)
            process = StageProcess()
            code = process.run(command)
            if code != 0:
                record.update(status="stopped" if process.stopped_by else "failed", exit_code=code)
                record["wall_s"] += time.time() - started
                _write_record(directory, record)
                _rebuild_report(pipeline)
                if process.stopped_by:
                    then = "run the same `litllm run` command again to resume it"
                else:
                    then = f"failed (exit code {code}); once the cause above is fixed, the same `litllm run` command continues from this stage"
                print(
                    f"litllm run: {stage.name} {'was stopped; ' + then if process.stopped_by else then}. "
                    f"The stage's command, to run it alone:\n  {shell_line(command)}",
                    file=sys.stderr,
                    flush=True,
                )
                return code if code > 0 else 128 + (process.stopped_by or signal.SIGTERM)
        finished = time.time()
        record.update(status="done", finished=finished, wall_s=record["wall_s"] + finished - started)
        _write_record(directory, record)
        runs[stage.name] = f"{fp}@{finished}"
        if stage.name == pipeline.chat:
            print(f"litllm run: the chat model is {_export_chat(pipeline, stage)}", flush=True)
        _rebuild_report(pipeline)
    if not dry_run:
        chat = pipeline.out_dir / "chat"
        tail = f"; talk to it: litllm chat --model_dir {chat}" if chat.is_dir() else ""
        print(f"litllm run: finished. Report card: {pipeline.out_dir / 'report.md'}{tail}", flush=True)
    return 0
