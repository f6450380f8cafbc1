"""Hydra's multirun (`-m`) runs one sweep per combination; each gets its own name, so no job
starts fresh over another's results, and Hydra's record of the multirun stays in the outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def planned_folders(tmp: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "automl.cli.sweep", *args, "experiment=smoke",
         "sweep.dry_run=true", f"paths.output_dir={tmp / 'out'}"],
        cwd=tmp, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    plans = [json.loads(line)["plan"] for line in done.stdout.splitlines() if "dry_run" in line]
    return [
        line.split("results: ")[1].split(" ")[0] for p in plans for line in p if "results:" in line
    ]


def test_each_job_of_a_multirun_is_its_own_sweep(tmp_path: Path) -> None:
    out = tmp_path / "out"
    jobs = planned_folders(tmp_path, "-m", "data.max_examples=200,300")
    assert jobs == [str(out / "smoke-0"), str(out / "smoke-1")]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing in the working folder
    assert [p.name for p in out.iterdir()] == [".hydra-multirun"]  # a dry run: no sweep folder
    assert planned_folders(tmp_path, "data.max_examples=200") == [str(out / "smoke")]


def test_a_multirun_over_names_keeps_them(tmp_path: Path) -> None:
    """`sweep.name=a,b` names each job: no number is added (`sweep.resume=true` with the name
    finds it), unless the names repeat or another value is swept too."""
    out = tmp_path / "out"
    assert planned_folders(tmp_path, "-m", "sweep.name=alpha,beta") == [
        str(out / "alpha"), str(out / "beta"),
    ]  # fmt: skip
    assert planned_folders(tmp_path, "-m", "sweep.name=alpha,'alpha'") == [
        str(out / "alpha-0"), str(out / "alpha-1"),
    ]  # fmt: skip
    jobs = planned_folders(tmp_path, "-m", "sweep.name=alpha,beta", "data.max_examples=200,300")
    assert jobs == [str(out / f"{n}-{i}") for i, n in enumerate(["alpha"] * 2 + ["beta"] * 2)]


def test_a_multirun_over_data_sources_shares_their_settings(tmp_path: Path) -> None:
    """`data.path` belongs to the jsonl job; the chatterbot job carries it unread, as the
    grid meant (a single run with data.path but no data= group is refused)."""
    rows = "".join(
        json.dumps({"text": f"{label} text {i}", "label": label}) + "\n"
        for i in range(30) for label in ("a", "b")
    )  # fmt: skip
    (tmp_path / "mine.jsonl").write_text(rows)
    jobs = planned_folders(tmp_path, "-m", "data=chatterbot_topics,jsonl", "data.path=mine.jsonl")
    assert len(jobs) == 2


def test_a_group_swept_by_a_configs_sweeper_shares_its_settings(tmp_path: Path) -> None:
    """`hydra.sweeper.params` in a config of one's own (`-cn`): the packaged-model job carries
    the hf job's `model.name_or_path`, as the grid meant."""
    from automl.config.schema import ModelConfig
    from automl.model.load import model_location

    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "grid.yaml").write_text(
        "defaults:\n  - config\n  - _self_\nhydra:\n  sweeper:\n    params:\n"
        "      model: tiny_bert,hf\n"
    )
    folder = model_location(ModelConfig())  # the packaged MiniLM's folder, read as any folder
    jobs = planned_folders(tmp_path, "--config-dir", str(conf_dir), "-cn", "grid", "-m",
                           f"model.name_or_path={folder}")  # fmt: skip
    assert len(jobs) == 2


def test_a_later_jobs_search_space_is_checked_before_the_first_job_runs(tmp_path: Path) -> None:
    """quick.yaml freezes up to 3 blocks; tiny_bert has 2. The tiny_bert job failed only
    after the MiniLM job's whole sweep had run."""
    done = subprocess.run(
        [sys.executable, "-m", "automl.cli.sweep", "-m", "experiment=smoke",
         "model=minilm,tiny_bert", "search_space=quick", "sweep.dry_run=true",
         f"paths.output_dir={tmp_path / 'out'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: job ") and "model=tiny_bert" in last.split(": ")[1], last
    assert "quick.yaml: peft.frozen_layers" in last, last
    assert "dry_run" not in done.stdout  # no job ran
