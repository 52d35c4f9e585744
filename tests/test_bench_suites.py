"""Every benchmark is a suite of one command: ``convexrelu bench --suite NAME``."""

import importlib

import pytest

from convexrelu.cli import main
from convexrelu.experiments.suites import SUITES, run_suite


@pytest.mark.parametrize("name", sorted(SUITES))
def test_each_suite_is_a_module_with_main_and_its_own_help(name, capsys):
    module = importlib.import_module(f"convexrelu.experiments.suites.{SUITES[name][0]}")
    assert callable(module.main)
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--suite", name, "--", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--out" in out
    assert ("--quick" in out) == SUITES[name][1]


def test_quick_is_refused_where_a_suite_has_no_reduced_sizes(capsys, tmp_path):
    assert main(["bench", "--suite", "losses", "--quick", "--out", str(tmp_path)]) == 2
    assert "no --quick" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown benchmark suite"):
        run_suite("nope", [])


def test_a_suite_runs_and_writes_its_files(tmp_path, capsys):
    assert main(["bench", "--suite", "losses", "--out", str(tmp_path)]) == 0
    names = {p.suffix for p in tmp_path.iterdir()}
    assert {".json", ".md"} <= names
