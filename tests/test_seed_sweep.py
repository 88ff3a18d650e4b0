"""The seed sweep's table: means and spreads over pretraining seeds, episodes paired across seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.seed_sweep import main
from worldmodel.evaluation.seed_sweep import format_table, plan_dir, sweep_table


def _write_plan(out: Path, seed: int, agent: str, successes: list[bool], ms: float, goal_steps: int | None = None,
                env: str = "reacher", pose: list[bool] | None = None, levels: dict[str, int] | None = None) -> None:
    run = plan_dir(out, env, seed, agent, goal_steps)
    run.mkdir(parents=True)
    episodes = [{"seed": i, "success": s, "steps": 10 + i} for i, s in enumerate(successes)]
    criteria = {}
    if pose is not None:
        criteria = {"pose_success": sum(pose) / len(pose)}
        for episode, met in zip(episodes, pose):
            episode["criteria"] = {"pose_success": met}
    run.joinpath("summary.json").write_text(json.dumps({
        "success_rate": sum(successes) / len(successes), "criteria_success_rates": criteria,
        "ms_per_step": {"median": ms}, "mean_final_distance": 0.1, "steps_per_level": levels or {},
        "episodes": episodes}))


def test_table_pools_episodes_over_seeds(tmp_path):
    # hierarchical solves 4 of 4 per seed, mpc 2 of 4 (seed 1) and 3 of 4 (seed 2)
    _write_plan(tmp_path, 1, "hierarchical", [True] * 4, ms=20.0, levels={"1": 30, "2": 10})
    _write_plan(tmp_path, 2, "hierarchical", [True] * 4, ms=30.0, levels={"1": 40})
    _write_plan(tmp_path, 1, "mpc", [True, False, True, False], ms=10.0)
    _write_plan(tmp_path, 2, "mpc", [True, True, True, False], ms=12.0)
    pretrain = tmp_path / "reacher_s1"
    pretrain.mkdir()
    pretrain.joinpath("summary.json").write_text(json.dumps(
        {"cost_correlation": {"task": {"task": {"spearman": 0.99, "pearson": 0.98}}}}))
    pretrain.joinpath("pretrain.log").write_text("[2026-11-29 23:17:19,510][a][INFO] - start\nprogress bar\n"
                                                 "[2026-11-29 23:47:49,510][a][INFO] - end\n")
    table = sweep_table("reacher", [1, 2], ["mpc", "hierarchical"], tmp_path)
    assert table["cost_spearman"] == {"task vs task distance": {1: 0.99}}
    assert table["pretrain_wall_s"] == {1: pytest.approx(1830.0)}
    assert table["agents"]["mpc"]["success_mean"] == pytest.approx(0.625)
    assert table["agents"]["mpc"]["success_std"] == pytest.approx(0.125)
    assert table["agents"]["hierarchical"]["ms_per_step_median"] == pytest.approx(25.0)
    (comparison,) = table["comparisons"]
    assert (comparison["episodes"], comparison["only_a"], comparison["only_b"]) == (8, 3, 0)
    assert comparison["p_value"] == pytest.approx(0.25)
    text = format_table(table)
    assert "| mpc | 4 | 62% ± 12% | s1 50%, s2 75% |" in text and "McNemar p = 0.25" in text and "(min): 30.5" in text
    assert "- hierarchical: share of steps level 2 planned, per seed: s1 25%, s2 0%" in text
    assert "level_2_share_per_seed" not in table["agents"]["mpc"]


def test_table_only_without_runs_is_one_line_error(tmp_path, capsys):
    assert main(["--env", "reacher", "--out", str(tmp_path), "--table-only"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_goal_steps_give_one_table_per_distance_from_their_own_runs(tmp_path, capsys):
    for k, (hier, flat) in {25: ([True] * 4, [True] * 4), 75: ([True, True, False, False], [False] * 4)}.items():
        for seed in (1, 2):
            _write_plan(tmp_path, seed, "hierarchical", hier, ms=20.0, goal_steps=k, env="pusht")
            _write_plan(tmp_path, seed, "mpc", flat, ms=10.0, goal_steps=k, env="pusht")
    assert plan_dir(tmp_path, "pusht", 1, "mpc", 75).name == "plan_pusht_s1_mpc_k75"
    far = sweep_table("pusht", [1, 2], ["mpc", "hierarchical"], tmp_path, goal_steps=75)
    assert far["agents"]["hierarchical"]["success_mean"] == 0.5 and far["agents"]["mpc"]["success_mean"] == 0.0
    assert main(["--env", "pusht", "--out", str(tmp_path), "--seeds", "1", "2", "--agents", "mpc", "hierarchical",
                 "--goal-steps", "25", "75", "--table-only"]) == 0
    text = capsys.readouterr().out
    assert text.index("pusht, goals 25 steps ahead") < text.index("pusht, goals 75 steps ahead")
    assert "| hierarchical | 4 | 50% ± 0% | s1 50%, s2 50% |" in text
    assert json.loads((tmp_path / "pusht_k75_seed_sweep.json").read_text())["goal_steps"] == 75


def test_other_criteria_get_their_own_columns_and_paired_comparisons(tmp_path):
    for seed, (hier, flat) in {1: ([True, True, False, False], [False] * 4), 2: ([True] * 4, [True] * 4)}.items():
        for agent, poses in (("hierarchical", hier), ("mpc", flat)):
            _write_plan(tmp_path, seed, agent, [False] * 4, ms=10.0, goal_steps=50, env="pusht", pose=poses)
    table = sweep_table("pusht", [1, 2], ["mpc", "hierarchical"], tmp_path, goal_steps=50)
    assert table["agents"]["hierarchical"]["criteria"]["pose_success"]["success_per_seed"] == {1: 0.5, 2: 1.0}
    plain, pose = table["comparisons"]
    assert (plain["criterion"], plain["only_a"], plain["only_b"]) == ("is_success", 0, 0)
    assert (pose["criterion"], pose["only_a"], pose["only_b"], pose["both"]) == ("pose_success", 2, 0, 4)
    text = format_table(table)
    assert "| agent | episodes | success | per seed | pose_success | pose_success per seed |" in text
    assert "| hierarchical | 4 | 0% ± 0% | s1 0%, s2 0% | 75% ± 25% | s1 50%, s2 100% |" in text
    _write_plan(tmp_path, 1, "oracle", [True, False], ms=500.0, goal_steps=50, env="pusht", pose=[True, True])
    once = format_table(sweep_table("pusht", [1, 2], ["oracle"], tmp_path, goal_steps=50))
    assert "| oracle | 2 | 50% (one run) | s1 50% | 100% (one run) | s1 100% |" in once
    assert "- paired (pose_success), 8 episodes" in text
    _write_plan(tmp_path, 1, "mpc", [False] * 4, ms=10.0, goal_steps=75, env="pusht")
    _write_plan(tmp_path, 1, "hierarchical", [False] * 4, ms=10.0, goal_steps=75, env="pusht", pose=[True] * 4)
    one_sided = sweep_table("pusht", [1], ["mpc", "hierarchical"], tmp_path, goal_steps=75)["comparisons"]
    assert [c["criterion"] for c in one_sided] == ["is_success"]


def test_agents_without_a_world_model_play_on_the_first_seed_only_and_pretrains_take_the_overrides(tmp_path,
                                                                                                  monkeypatch):
    import worldmodel.evaluation.seed_sweep as sweep

    commands = []

    def fake_run(command, log, threads):
        commands.append(command)
        run = next(Path(a.split("=", 1)[1]) for a in command if a.startswith("hydra.run.dir="))
        run.mkdir(parents=True, exist_ok=True)
        (run / ("world_model.pt" if "experiments.pretrain" in command else "summary.json")).write_text("{}")

    monkeypatch.setattr(sweep, "_run", fake_run)
    sweep.run_sweep("pusht", [1, 2, 3], ["random", "mpc"], 5, 0, 1, tmp_path, [25], once=frozenset({"random"}),
                    pretrain_overrides=("data.episodes=400",))
    pretrains = [c for c in commands if "experiments.pretrain" in c]
    assert [a for c in pretrains for a in c if a.startswith("seed=")] == ["seed=1", "seed=2", "seed=3"]
    assert all("data.episodes=400" in c for c in pretrains)
    plans = [next(a for a in c if a.startswith("hydra.run.dir=")).rsplit("/", 1)[1] for c in commands
             if "experiments.plan" in c]
    assert plans == ["plan_pusht_s1_random_k25", "plan_pusht_s1_mpc_k25", "plan_pusht_s2_mpc_k25",
                     "plan_pusht_s3_mpc_k25"]
    commands.clear()
    sweep.run_sweep("pusht", [1, 2, 3], ["random", "mpc"], 5, 0, 1, tmp_path, [25], once=frozenset({"random"}))
    assert commands == []  # every run has its result: nothing is run again
