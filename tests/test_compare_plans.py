"""``python -m experiments.compare_plans``: the paired counts and the exact McNemar p-value."""

from __future__ import annotations

import json

import pytest

from experiments.compare_plans import main
from worldmodel.evaluation.failures import describe, failure_kinds
from worldmodel.evaluation.paired import paired_comparison, sign_test_p


def test_sign_test_matches_the_binomial_tails():
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(0, 8) == pytest.approx(2 / 256)
    assert sign_test_p(8, 0) == sign_test_p(0, 8)
    assert sign_test_p(4, 8) == pytest.approx(2 * (1 + 12 + 66 + 220 + 495) / 4096)
    assert sign_test_p(5, 5) == 1.0


def test_paired_comparison_counts_only_the_shared_seeds():
    a = [{"seed": s, "success": s < 3} for s in range(6)]
    b = [{"seed": s, "success": s in (2, 3, 4)} for s in range(1, 7)]
    result = paired_comparison(a, b)
    assert result["episodes"] == 5  # seeds 1..5
    assert (result["both"], result["only_a"], result["only_b"]) == (1, 1, 2)
    assert result["success_a"] == pytest.approx(2 / 5) and result["success_b"] == pytest.approx(3 / 5)
    assert result["steps_a"] is None  # these records carry no steps
    timed_a = [{**e, "steps": 10 * e["seed"]} for e in a]  # solved shared seeds 1, 2: 10, 20 steps
    timed_b = [{**e, "steps": 10 * e["seed"]} for e in b]  # 20, 30, 40
    timed = paired_comparison(timed_a, timed_b)
    assert (timed["steps_a"], timed["steps_b"]) == (15.0, 30.0)
    with pytest.raises(ValueError, match="share no episode seed"):
        paired_comparison(a, [{"seed": 99, "success": True}])


def _run(tmp_path, name, env, successes, agent=None):
    run = tmp_path / name
    run.mkdir()
    episodes = [{"seed": s, "success": ok} for s, ok in enumerate(successes)]
    (run / "summary.json").write_text(json.dumps({"env": env, "agent": agent or name, "episodes": episodes}))
    return str(run)


def test_command_prints_the_comparison_and_refuses_other_envs(tmp_path, capsys):
    a = _run(tmp_path, "mpc", "pointmass_maze", [False] * 10)
    b = _run(tmp_path, "hierarchical", "pointmass_maze", [True] * 8 + [False] * 2)
    assert main([a, b]) == 0
    out = capsys.readouterr().out
    assert "10 shared episodes: mpc 0%, hierarchical 80%" in out and "p = 0.0078" in out
    other = _run(tmp_path, "oracle", "pointmass_open", [True] * 10)
    assert main([a, other]) == 2
    assert "different envs" in capsys.readouterr().err
    assert main([a, str(tmp_path / "missing")]) == 2
    assert "no plan summary" in capsys.readouterr().err


def test_command_names_the_runs_when_both_used_the_same_agent(tmp_path, capsys):
    a = _run(tmp_path, "mpc_default", "pointmass_maze", [True, False], agent="mpc")
    b = _run(tmp_path, "mpc_longer", "pointmass_maze", [True, True], agent="mpc")
    assert main([a, b]) == 0
    assert f"only {a} 0, only {b} 1" in capsys.readouterr().out


def test_command_pairs_each_other_criterion_both_runs_report(tmp_path, capsys):
    def run(name, successes, poses):
        path = tmp_path / name
        path.mkdir()
        episodes = [{"seed": s, "success": ok, "criteria": {"pose_success": pose}}
                    for s, (ok, pose) in enumerate(zip(successes, poses))]
        summary = {"env": "pusht", "agent": name, "episodes": episodes,
                   "criteria_success_rates": {"pose_success": sum(poses) / len(poses)}}
        (path / "summary.json").write_text(json.dumps(summary))
        return str(path)

    a = run("mpc", [False] * 10, [True] * 9 + [False])
    b = run("random", [False] * 10, [True] + [False] * 9)
    assert main([a, b]) == 0
    out = capsys.readouterr().out
    assert "pose_success: mpc 90%, random 10%; both 1, only mpc 8, only random 0; exact McNemar p = 0.0078" in out
    plain = _run(tmp_path, "hierarchical", "pusht", [False] * 10)  # reports no other criterion
    assert main([a, plain]) == 0
    assert "pose_success" not in capsys.readouterr().out


def test_failure_kinds_reads_each_failed_trace():
    episodes = [
        {"seed": 0, "success": True, "distances": [0.6, 0.3, 0.09]},
        {"seed": 1, "success": True, "distances": [0.5, 0.07]},
        {"seed": 2, "success": False, "distances": [0.6, 0.6, 0.6]},  # never moved
        {"seed": 3, "success": False, "distances": [0.4, 0.35, 0.7]},  # ended further
        {"seed": 4, "success": False, "distances": [0.6, 0.10, 0.12]},  # stopped short, closest 0.10
        {"seed": 5, "success": False, "distances": [0.6, 0.2, 0.14]},  # stopped short, closest 0.14
        {"seed": 6, "success": False, "distances": [0.6], "failure": "agent raised"},
    ]
    kinds = failure_kinds(episodes)
    assert {k: kinds[k] for k in ("failed", "never_moved", "ended_further", "stopped_short", "faults")} == \
        {"failed": 5, "never_moved": 1, "ended_further": 1, "stopped_short": 2, "faults": 1}
    assert kinds["closest_median"] == pytest.approx(0.12) and kinds["solved_final_median"] == pytest.approx(0.08)
    assert describe(kinds).startswith("failed 5: never moved 1, ended further 1, stopped short 2, faults 1")
    assert failure_kinds([{"seed": 0, "success": True, "distances": [0.1]}])["closest_median"] is None


def test_command_says_what_the_failures_of_each_run_were(tmp_path, capsys):
    def run(name, traces):
        path = tmp_path / name
        path.mkdir()
        episodes = [{"seed": s, "success": trace[-1] < 0.1, "distances": trace} for s, trace in enumerate(traces)]
        (path / "summary.json").write_text(json.dumps({"env": "pusher", "agent": name, "episodes": episodes}))
        return str(path)

    stuck, short, solved = [0.5, 0.5], [0.5, 0.12], [0.5, 0.08]
    a = run("mpc", [stuck, stuck, short, solved])
    b = run("hierarchical", [solved, short, solved, solved])
    assert main([a, b]) == 0
    out = capsys.readouterr().out
    assert "mpc failed 3: never moved 2, ended further 0, stopped short 1" in out
    assert "  of them solved by the other run only: failed 2: never moved 1, ended further 0, stopped short 1" in out
    assert "hierarchical failed 1: never moved 0, ended further 0, stopped short 1" in out
