"""Tests of the command line explaining itself: the top-level help, one flag name per idea (old
spellings still work, with a warning), did-you-mean for misspelt names, --set reaching a model's
options, a project's own ``models`` package, and ``--help`` without POSIX-only modules."""
import re
import subprocess
import sys

import pytest
from helpers import ROOT

from bench import cli, config, imports
from bench.data import cache, kinds
from bench.environment import CUDA_ENV


def help_text(capsys, argv) -> str:
    with pytest.raises(SystemExit) as done:
        cli.main(argv, prog="fishbench")
    assert done.value.code == 0
    return capsys.readouterr().out


def visible_flags(parser) -> dict[str, set[str]]:
    """subcommand -> the flags its help shows."""
    commands = next(a for a in parser._actions if a.dest == "command").choices
    return {name: {flag for action in sub._actions if action.help != "==SUPPRESS==" for flag in action.option_strings}
            for name, sub in commands.items()}


def test_the_top_level_help_says_what_fishbench_is_with_examples_and_its_environment_in_80_columns(capsys):
    text = help_text(capsys, ["--help"])
    assert "fishbench trains each model of a profile" in text and "Table 4" in text
    examples = text.split("examples:\n", 1)[1].split("\n\n", 1)[0]
    assert len(re.findall(r"^  fishbench (run|plan|report|list|speed)", examples, re.MULTILINE)) >= 4
    for variable in (kinds.DATA_DIR_ENV, cache.CACHE_DIR_ENV, CUDA_ENV):
        assert f"\n  {variable} " in text
    assert max(map(len, text.splitlines())) <= 80


def test_one_flag_name_per_idea_across_subcommands():
    flags = visible_flags(cli.build_parser())
    assert all("--threads-per-job" not in shown for shown in flags.values())
    assert {"--threads"} <= flags["run"] & flags["plan"] & flags["speed"]
    assert all("--results" in flags[name] for name in ("run", "plan", "report", "speed"))
    assert [name for name, shown in flags.items() if "--out" in shown] == ["report"]  # elsewhere than --results


@pytest.mark.parametrize("argv, dest, value, new", [
    (["plan", "--threads-per-job", "2"], "threads", 2, "--threads"),
    (["speed", "--out", "elsewhere"], "results", "elsewhere", "--results"),
])
def test_an_old_flag_spelling_still_works_and_warns_of_the_new_one(argv, dest, value, new):
    with pytest.warns(FutureWarning, match=f"{argv[1]} is deprecated; it is now {new}"):
        args = cli.build_parser().parse_args(argv)
    assert str(getattr(args, dest)) == str(value)


@pytest.mark.parametrize("settings, overrides, name, message", [
    (["epoch=3"], {}, "smoke", "unknown setting 'epoch'; did you mean 'epochs'? accepted: "),
    (["optimizer.learning_rat=0.1"], {}, "smoke",
     "unknown setting 'optimizer.learning_rat'; did you mean 'optimizer.learning_rate'?"),
    ([], {}, "smok", "Unknown profile 'smok'; did you mean 'smoke'? accepted: "),
    ([], {"run.models": ["fishnet56"]}, "smoke", "Unknown model 'fishnet56'; did you mean 'fishnet55'? accepted: "),
    ([], {"run.datasets": ["cifar"]}, "smoke", "Unknown dataset 'cifar'; did you mean 'cifar10'? accepted: "),
    (["model_options.fishnet55.hed=conv"], {}, "smoke", "unknown option 'hed'; did you mean 'head'? accepted: "),
    (["model_options.fishnet55=conv"], {}, "smoke", "a model's option is set as model_options.MODEL.OPTION=VALUE"),
])
def test_a_misspelt_name_is_refused_in_one_line_with_the_name_meant(settings, overrides, name, message):
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        config.load_profile(name, overrides, settings)
    assert "\n" not in str(refused.value)


def test_set_reaches_a_models_options_as_a_profiles_model_options_table_does():
    profile = config.load_profile("smoke", settings=["model_options.fishnet55.head=conv", "model_options.cnn.pool=average"])
    options = dict(profile.entries("synthetic"))
    assert options["fishnet55"]["head"] == "conv" and options["cnn"]["pool"] == "average"
    assert options["mlp"] == dict(config.load_profile("smoke").entries("synthetic"))["mlp"]  # the others unchanged


def test_a_file_importing_a_projects_own_models_package_is_told_to_rename_it(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "models" / "blocks.py").write_text("WIDTH = 8\n")
    (tmp_path / "mynet.py").write_text("from models import register_model\nfrom models.blocks import WIDTH\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="No module named 'models.blocks'.*rename yours") as refused:
        imports.import_all(("mynet.py",))
    assert "\n" not in str(refused.value)


@pytest.mark.slow
def test_the_help_needs_no_posix_only_module():
    """Windows has no fcntl: ``import bench`` and ``--help`` must not need it (a run's lock does)."""
    code = "import sys; sys.modules['fcntl'] = None; from bench import cli; cli.main(['--help'])"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "examples:" in done.stdout
