"""Pure logic of the search race (benchmarks/race.py): picks over time, anytime values, the table.

No models, no Ray: synthetic trial events and curves.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.race import (
    Clock,
    curve_of,
    incumbents,
    main,
    markdown,
    median_curve,
    median_reach,
    merge_runs,
    most_median,
    spread,
    summarize,
    time_to_reach,
    value_at,
)


def ev(t: float, val: float | None, name: str) -> dict:
    return {"t": t, "val": val, "id": name}


def test_incumbents_keep_only_strict_improvements_in_time_order() -> None:
    events = [
        ev(30, 0.7, "c"),  # out of order on purpose
        ev(10, 0.5, "a"),
        ev(20, 0.5, "b"),  # a tie keeps the earlier pick
        ev(40, 0.6, "d"),  # worse than the pick
        ev(50, math.nan, "e"),  # a diverged trial never picks
        ev(60, None, "f"),
        ev(70, 0.9, "g"),
    ]
    assert [p["id"] for p in incumbents(events)] == ["a", "c", "g"]
    assert [p["t"] for p in incumbents(events)] == [10, 30, 70]
    assert incumbents([]) == []


def test_incumbents_break_a_tie_by_the_lower_loss_only_where_events_carry_it() -> None:
    """This project's export keeps the lower validation loss on equal accuracy; a system
    whose events carry no loss keeps its first such model."""
    events = [
        {**ev(10, 0.5, "a"), "loss": 1.0},
        {**ev(20, 0.5, "b"), "loss": 0.8},  # same accuracy, lower loss: the new pick
        {**ev(30, 0.5, "c"), "loss": 0.9},  # same accuracy, higher loss than the pick
        {**ev(40, 0.6, "d"), "loss": 2.0},  # higher accuracy wins whatever its loss
    ]
    assert [p["id"] for p in incumbents(events)] == ["a", "b", "d"]
    assert [p["id"] for p in incumbents([ev(10, 0.5, "a"), ev(20, 0.5, "b")])] == ["a"]


def test_curve_and_value_at() -> None:
    picks = incumbents([ev(10, 0.5, "a"), ev(30, 0.7, "c")])
    curve = curve_of(picks, {"a": 0.55, "c": None})
    assert curve == [[10, 0.5, 0.55], [30, 0.7, None]]
    assert value_at(curve, 5) is None  # no pick yet
    assert value_at(curve, 10) == 0.55  # a pick counts from its own time on
    assert value_at(curve, 29.9) == 0.55
    assert value_at(curve, 30) is None  # the pick has no test score
    assert value_at(curve, 100, column=1) == 0.7  # validation accuracy of the pick


@pytest.mark.parametrize(
    ("target", "expected"),
    [(0.5, 10.0), (0.6, 30.0), (0.8, 50.0), (0.81, None)],
)
def test_time_to_reach(target: float, expected: float | None) -> None:
    curve = [[10, 0.5, 0.55], [30, 0.6, 0.62], [40, 0.7, None], [50, 0.8, 0.8]]
    assert time_to_reach(curve, target) == expected


def test_spread_and_median_reach() -> None:
    assert spread([0.3, None, 0.1, 0.2, math.nan]) == {
        "median": 0.2,
        "min": 0.1,
        "max": 0.3,
        "n": 3,
    }
    assert spread([None])["median"] is None
    assert median_reach([10.0, None, 30.0]) == 30.0  # a miss counts as infinite
    assert median_reach([10.0, None, None]) is None
    assert median_reach([]) is None


def test_median_curve_counts_a_seed_without_a_pick_as_the_lowest() -> None:
    """Two picks of three seeds gave their mean (0.45 at 16 s): the seed with no pick yet was
    left out, which raised the median; counted lowest, the median is the lower pick."""
    curves = [
        [[10, 0.5, 0.4], [20, 0.6, 0.6]],
        [[15, 0.5, 0.5]],
        [[30, 0.5, 0.9]],
    ]
    assert median_curve(curves, [5, 12, 16, 25, 30]) == [None, None, 0.4, 0.5, 0.6]
    assert most_median([0.4, None, 0.6, 0.8]) == 0.5  # the two middle seeds' mean
    assert most_median([None, None, 0.6, 0.8]) is None  # the median falls on a seed without
    assert most_median([]) is None


def test_clock_leaves_out_paused_and_excluded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("benchmarks.race.time.perf_counter", lambda: now[0])
    clock = Clock()
    now[0] = 110.0
    assert clock.now() == 10.0
    with clock.paused():  # keeping a pick's weights: 5 s off the clock
        now[0] = 115.0
    now[0] = 120.0
    clock.exclude(2.0)  # measured elsewhere (a Ray worker saving weights)
    assert clock.now() == 13.0


def run(system: str, seed: int, curve: list, trials: int = 4, **extra: object) -> dict:
    return {
        "system": system,
        "seed": seed,
        "size": "subsample",
        "curve": curve,
        "trials": trials,
        "wall_s": 100.0,
        "final_test_accuracy": curve[-1][2],
        **extra,
    }


def test_summarize_scores_at_the_budget_and_times_the_reach_of_hf() -> None:
    runs = [
        run("hf", 0, [[50, 0.6, 0.60], [90, 0.7, 0.70]]),
        run("hf", 1, [[60, 0.6, 0.64]]),
        run("hf", 2, [[40, 0.6, 0.62], [150, 0.9, 0.99]]),  # after the budget: not counted
        run("ours", 0, [[20, 0.7, 0.66], [70, 0.8, 0.75]]),
        run("ours", 1, [[30, 0.7, 0.63]]),
        run("ours", 2, [[10, 0.7, 0.70]]),
        {"system": "ours", "seed": 3, "size": "subsample", "error": "boom"},  # left out
    ]
    block = summarize(runs, budget_s=100)["subsample"]
    assert block["hf_target"] == pytest.approx(0.64)  # median of 0.70, 0.64, 0.62
    hf, ours = block["systems"]["hf"], block["systems"]["ours"]
    assert list(block["systems"]) == ["ours", "hf"]  # in SYSTEMS order
    assert hf["test"]["median"] == pytest.approx(0.64)
    assert hf["final_test"]["max"] == pytest.approx(0.99)  # as run, past the budget
    assert ours["test"] == {"median": 0.70, "min": 0.63, "max": 0.75, "n": 3}
    assert ours["seeds"] == [0, 1, 2]
    assert ours["reach_hf_s"] == 20.0  # 20 s, never, 10 s -> median 20 s
    assert ours["reached_hf"] == 2
    assert hf["reach_hf_s"] == 90.0  # 90, 60, 150 s
    assert ours["anytime"]["0.25"] == pytest.approx(0.66)  # at 25 s: 0.66, none yet, 0.70
    assert hf["anytime"]["0.25"] is None


def test_markdown_has_a_row_per_system_and_the_anytime_table() -> None:
    runs = [
        run("hf", 0, [[50, 0.6, 0.60]]),
        run("one_epoch", 0, [[80, 0.6, 0.65]]),
        run("ray_optuna", 0, [[95, 0.5, 0.50]]),
    ]
    results = {
        "machine": {
            "date": "2025-01-01",
            "cpus": 2,
            "gpu": False,
            "torch": "2",
            "transformers": "5",
        },
        "budget_s": 100.0,
        "seeds": [0],
        "sizes": {"subsample": "data.max_examples=1000"},
        "wall_s": 600.0,
        "summary": summarize(runs, 100.0),
    }
    text = markdown(results)
    assert "budget 100 s per system and seed" in text
    assert (
        "| one_epoch | 0.650 (0.650–0.650) | 0.650 (0.650–0.650) | 4 | 0.600 | 80 s (1/1) |" in text
    )
    assert "| ray_optuna | 0.500 (0.500–0.500) |" in text
    assert "not reached (0/1)" in text
    assert "| hf | - | 0.600 | 0.600 | 0.600 |" in text  # 25 %: no pick yet


def test_merge_runs_adds_seeds_and_replaces_a_rerun() -> None:
    earlier = [run("hf", 0, [[50, 0.6, 0.60]]), run("ours", 0, [[20, 0.7, 0.66]])]
    failed = {"system": "ours", "seed": 1, "size": "subsample", "error": "boom"}
    merged = merge_runs([*earlier, failed], [run("ours", 1, [[30, 0.7, 0.63]])])
    assert [(r["system"], r["seed"], "error" in r) for r in merged] == [
        ("hf", 0, False),
        ("ours", 0, False),
        ("ours", 1, False),  # the rerun replaced the failed run
    ]
    other_size = {**run("hf", 0, [[10, 0.5, 0.5]]), "size": "full"}
    assert len(merge_runs(earlier, [other_size])) == 3  # same seed, other size: both kept


def test_markdown_names_the_sittings_of_a_merged_race() -> None:
    results = {
        "machine": {
            "date": "2025-01-02",
            "cpus": 2,
            "gpu": False,
            "torch": "2",
            "transformers": "5",
        },
        "budget_s": 100.0,
        "seeds": [0, 1],
        "sizes": {"subsample": "data.max_examples=1000"},
        "wall_s": 600.0,
        "summary": summarize([run("hf", 0, [[50, 0.6, 0.6]]), run("hf", 1, [[50, 0.6, 0.6]])], 100),
        "sittings": [
            {"date": "2025-01-01", "seeds": [0], "git_commit": "abcdef0123"},
            {"date": "2025-01-02", "seeds": [1], "git_commit": None},
        ],
    }
    text = markdown(results)
    assert "seeds [0] on 2025-01-01 at abcdef0; seeds [1] on 2025-01-02 at ?." in text


@pytest.mark.parametrize(
    ("earlier", "message"),
    [
        (None, "cannot read"),
        ("not json", "cannot read"),
        (json.dumps({"budget_s": 420.0, "quick": False, "runs": []}), "would not compare"),
        (
            json.dumps({"budget_s": 180.0, "quick": False, "first_trials_shared": False}),
            "first_trials to this project's sweep alone",
        ),
        (
            json.dumps({"budget_s": 420.0, "quick": False, "first_trials_shared": True}),
            "ran 420.0 s per run",
        ),
        (  # another split: other test texts (the race runs on data.seed 0 unless told)
            json.dumps(
                {"budget_s": 180.0, "quick": False, "first_trials_shared": True, "data_seed": 1}
            ),
            "ran on data.seed 1, this race on 0: other test texts",
        ),
        (  # this project's picks taken by the first of equal scores (no loss recorded)
            json.dumps(
                {
                    "budget_s": 180.0,
                    "quick": False,
                    "first_trials_shared": True,
                    "runs": [{"system": "ours", "events": [{"t": 1, "val": 0.5, "id": "a"}]}],
                }
            ),  # fmt: skip
            "credits this project with the first of equal validation scores",
        ),
    ],
)
def test_add_to_refuses_a_race_it_cannot_join_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], earlier: str | None, message: str
) -> None:
    if earlier is not None:
        (tmp_path / "race.json").write_text(earlier)
    with pytest.raises(SystemExit) as stop:  # argparse's one-line usage error, exit 2
        main(["--seeds", "0", "--budget-s", "180", "--add-to", str(tmp_path)])
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--add-to:" in last and message in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if earlier is None else ["race.json"])


def test_add_to_and_out_are_one_or_the_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "a"), "--add-to", str(tmp_path / "b")])
    assert stop.value.code == 2
    assert "not allowed with" in capsys.readouterr().err.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_reach_and_anytime_count_a_seed_without_a_pick_inside_the_budget_lowest() -> None:
    runs = [
        run("hf", 0, [[50, 0.6, 0.60]]),
        run("hf", 1, [[60, 0.6, 0.60]]),
        run("hf", 2, [[60, 0.6, 0.60]]),
        run("ours", 0, [[10, 0.7, 0.80], [90, 0.8, 0.85]]),  # one seed with an early pick
        run("ours", 1, [[120, 0.7, 0.90]]),  # its only pick after the budget
        run("ours", 2, [[80, 0.7, 0.50], [130, 0.8, 0.90]]),
    ]
    ours = summarize(runs, budget_s=100)["subsample"]["systems"]["ours"]
    assert ours["anytime"]["0.25"] is None  # 1 of 3 seeds had a pick at 25 s: no median
    assert ours["anytime"]["1"] == pytest.approx(0.50)  # 0.85 and 0.50; seed 1 none yet
    assert ours["reached_hf"] == 1  # seed 1 and 2 reach 0.60 only after 100 s
    assert ours["reach_hf_s"] is None  # 10 s, never, never


def test_unseen_test_accuracy_is_a_column_of_its_own() -> None:
    runs = [
        run("hf", 0, [[50, 0.6, 0.60, 0.40]]),
        run("ours", 0, [[20, 0.7, 0.66, 0.50], [70, 0.8, 0.75, 0.55]]),
    ]
    summary = summarize(runs, budget_s=100)
    assert summary["subsample"]["systems"]["ours"]["unseen"]["median"] == pytest.approx(0.55)
    results = {
        "machine": {"date": "2026-12-06", "cpus": 2, "gpu": False, "torch": "2",
                    "transformers": "5"},
        "budget_s": 100.0, "seeds": [0], "wall_s": 60.0, "sizes": {"subsample": "1000"},
        "summary": summary, "first_trials_shared": True,
        "versions": {"ray": "2.60.0", "optuna": "5.1.0"}, "git_commit": "abcdef0123",
    }  # fmt: skip
    text = markdown(results)
    assert "| ours | 0.750 (0.750–0.750) | 0.550 (0.550–0.550) |" in text
    assert "Every system runs the search space's `first_trials` first" in text
    assert "optuna 5.1.0, ray 2.60.0; commit abcdef0." in text
    old = markdown({**results, "summary": summarize([run("hf", 0, [[50, 0.6, 0.6]])], 100)})
    assert "unseen" not in old  # runs scored before the column: no empty column
