"""Tolerant, lazy discovery: listing reads each module's EXERCISE metadata
from its source (no torch), a broken module is listed with its error and
never stops another exercise from running."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labbench.cli import app
from labbench.engine import registry
from labbench.engine.registry import ExerciseBroken, UnknownExercise, discover

ROOT = Path(__file__).resolve().parents[1]

GOOD = '''
"""A good exercise."""
from labbench.engine import Exercise, Params

DESCRIPTION = """Explained """ + "here."
LOADED = True


class P(Params):
    n: int = 3


def run(p, run):
    run.summary(n=p.n)


EXERCISE = Exercise(id="9.1-good", title="Good", session=4, description=DESCRIPTION, Params=P, run=run,
                    data=["mnist"], primary_metric="n")
'''

MODULES = {
    "good": GOOD,
    "syntax": "x = (\nEXERCISE = 1\n",
    "missing_import": ('import not_a_module_anywhere\nfrom labbench.engine import Exercise\n'
                       'EXERCISE = Exercise(id="9.2-needs-module", title="Needs", session=4, description="", '
                       'Params=None, run=None)\n'),
    "raises": ('from labbench.engine import Exercise\n\n\ndef boom():\n    raise RuntimeError("bad constant")\n\n\n'
               'VALUE = boom()\nEXERCISE = Exercise(id="9.3-raises", title="Raises", session=4, description="", '
               'Params=None, run=None)\n'),
    "twice": GOOD.replace('title="Good"', 'title="Copy"'),
    "dynamic": ('from labbench.engine import Exercise, Params\n\n\nclass P(Params):\n    pass\n\n\n'
                'def make():\n    return Exercise(id="9.4-" + "dynamic", title="Built", session=4, description="d", '
                'Params=P, run=lambda p, r: None)\n\n\nEXERCISE = make()\n'),
    "_private": "raise SystemExit('never imported')\n",
}


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    pkg = tmp_path / "fake_exercises"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, src in MODULES.items():
        (pkg / f"{name}.py").write_text(textwrap.dedent(src))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg
    for mod in [m for m in sys.modules if m.startswith("fake_exercises")]:
        del sys.modules[mod]


def test_static_reading_broken_modules_and_lazy_loading(fake_package):
    stubs = discover(fake_package, "fake_exercises")
    by_module = {s.module.split(".")[-1]: s for s in stubs}
    assert "_private" not in by_module
    good = by_module["good"]
    assert (good.id, good.title, good.session, good.data, good.primary_metric) == (
        "9.1-good", "Good", 4, ["mnist"], "n")
    assert good.description == "Explained here." and not good.loaded
    assert "fake_exercises.good" not in sys.modules  # read from the source only
    assert good.Params().n == 3 and good.loaded  # first need: imported
    assert "fake_exercises.good" in sys.modules

    syntax = by_module["syntax"]
    assert syntax.broken and syntax.error.startswith("fake_exercises/syntax.py:1: SyntaxError")
    twice = by_module["twice"]
    assert twice.broken and 'exercise id "9.1-good" is defined twice' in twice.error
    dynamic = by_module["dynamic"]  # not plain literals: imported at discovery to learn its id
    assert dynamic.id == "9.4-dynamic" and dynamic.loaded and not dynamic.broken

    needs = by_module["missing_import"]
    assert needs.id == "9.2-needs-module" and not needs.broken  # it parses; the import fails on first need
    with pytest.raises(ExerciseBroken) as info:
        needs.load()
    assert str(info.value) == ('exercise "9.2-needs-module" cannot be loaded: fake_exercises/missing_import.py:1: '
                               "ModuleNotFoundError: No module named 'not_a_module_anywhere'")
    assert isinstance(info.value, UnknownExercise) and needs.broken
    with pytest.raises(ExerciseBroken, match=r"raises.py:5: RuntimeError: bad constant"):
        by_module["raises"].Params
    assert [s.broken for s in stubs][-1] is True  # broken ones listed last
    assert [s.id for s in stubs if not s.broken][0] == "9.1-good"


def run_quiet(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(ROOT / ".no-home"),
                               "LABBENCH_OFFLINE": "1"})


@pytest.mark.parametrize("argv", [["list"], ["--help"], ["run", "--help"]])
def test_list_and_help_do_not_import_torch(argv):
    code = ("import sys\nsys.argv = ['labbench'] + %r\nfrom labbench.cli import app\n"
            "try:\n    app()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n" % argv)
    res = run_quiet(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "NO-TORCH"


def test_all_exercises_are_stubs_that_load_on_need():
    registry.reset()
    exercises = registry.all_exercises()
    assert list(exercises)[:3] == ["1.1-perceptron", "1.2-backprop", "1.3-mnist-cnn"]
    cnn = exercises["1.3-mnist-cnn"]
    assert cnn.data == ["mnist"] and cnn.primary_metric == "test_acc" and cnn.session == 1
    assert "34,826" in cnn.description
    assert "epochs" in cnn.Params.model_fields  # imports the module
    assert registry.get_exercise("1.3-mnist-cnn") is cnn.load()
    with pytest.raises(UnknownExercise, match='unknown exercise "1.3-mnist-cn" \\(did you mean "1.3-mnist-cnn"'):
        registry.get_exercise("1.3-mnist-cn")


def test_a_broken_module_is_listed_and_does_not_stop_another_run(fake_package, monkeypatch, tmp_path):
    registry.reset()
    real = registry.list_exercise_stubs()
    fake = [s for s in discover(fake_package, "fake_exercises") if s.broken or s.id == "9.2-needs-module"]
    monkeypatch.setattr(registry, "_STUBS", real + fake)
    res = CliRunner().invoke(app, ["list"])
    assert res.exit_code == 0
    assert "Broken exercise modules" in res.output and "fake_exercises/syntax.py:1: SyntaxError" in res.output
    assert "1.1-perceptron" in res.output
    res = CliRunner().invoke(app, ["run", "1.1-perceptron", "--quiet", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["run", "9.2-needs-module", "--quiet", "--out", str(tmp_path / "r2")])
    assert res.exit_code == 2
    assert "cannot be loaded: fake_exercises/missing_import.py:1: ModuleNotFoundError" in res.output
    assert not (tmp_path / "r2").exists()
    res = CliRunner().invoke(app, ["list", "--check"])
    assert "9.2-needs-module" in res.output.split("Broken exercise modules")[1]
    res = CliRunner().invoke(app, ["show", "9.2-needs-module"])
    assert res.exit_code == 2 and "cannot be loaded" in res.output
    registry.reset()
