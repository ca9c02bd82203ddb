"""The notebook course: every notebook runs headless (papermill, smoke profile, real data) and checks itself.

Each notebook asserts its own key results, so a wrong result fails its execution. On top,
the executed copies are checked: every code cell ran, no cell produced an error, and the
parameters that papermill injected are the ones asked for. Then nbval (lax mode) runs each
executed copy once more, in the same output folder, and compares the cells tagged
``nbval-check-output`` (data facts and seeded results) with what the first run printed: a
re-run over a course's own outputs must reproduce them, which one papermill run cannot tell.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from medssl_lab.notebooks import github_repository, list_notebooks, run_notebooks, write_course_links
from medssl_lab.profiles import PROFILES

SHARED_PARAMETERS = {"profile", "data_dir", "output_dir", "device", "seed"}
CHECKED = "nbval-check-output"  # cells whose printed output a re-run must reproduce
SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")  # wall-clock times are left out of the comparison


@pytest.fixture(scope="module")
def executed(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("notebooks")
    run_notebooks(out, profile="smoke", data_dir=str(data_dir), device="cpu", seed=0)
    return out


def test_committed_notebooks_are_clean_and_parameterised() -> None:
    notebooks = list_notebooks()
    assert [p.name[:2] for p in notebooks] == ["00", "01", "02", "03", "04", "05", "06"]
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: want exactly one cell tagged 'parameters'"
        assigned = {
            line.split("=")[0].strip()
            for line in tagged[0].source.splitlines()
            if "=" in line and not line.lstrip().startswith("#")
        }
        settable = set(papermill.inspect_notebook(str(path)))  # what papermill and `notebooks run --set` can set
        assert assigned == settable, f"{path.name}: papermill cannot read {assigned - settable} (an '=' in a comment?)"
        assert SHARED_PARAMETERS <= settable, f"{path.name}: parameters cell lacks {SHARED_PARAMETERS - settable}"
        assert nb.cells[0].cell_type == "markdown", f"{path.name}: should open with what it teaches"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name}: commit notebooks stripped"
        checked = [c for c in nb.cells if CHECKED in c.metadata.get("tags", [])]
        assert checked and all(c.cell_type == "code" for c in checked), f"{path.name}: tag outputs to check"
        table = next(c.source for c in nb.cells if "}[profile]" in c.source)
        missing = [p for p in PROFILES if f'"{p}": dict(' not in table]
        assert not missing, f"{path.name}: its per-profile settings lack {missing}"


@pytest.mark.slow
def test_every_notebook_runs_in_smoke_profile(executed: Path) -> None:
    summary = json.loads((executed / "summary.json").read_text())
    assert [r["status"] for r in summary["runs"]] == ["ok"] * 7
    assert (executed / "summary.md").read_text().count("| ok |") == 7
    assert (executed / "pretrain" / "checkpoint.pt").exists()  # written by 01, read by the later ones


@pytest.mark.slow
def test_executed_notebooks_pass_lax_checks(executed: Path) -> None:
    for path in list_notebooks():
        nb = nbformat.read(executed / path.name, as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), f"{path.name}: a cell did not run"
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"
        images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
        assert images >= 1, f"{path.name}: no plot was drawn"


@pytest.mark.slow
def test_every_exercise_check_passes_in_the_teacher_edition(executed: Path) -> None:
    """The committed notebooks hold the solutions: every check says correct and gives its cell's full points."""
    for path in list_notebooks():
        checks = [c for c in nbformat.read(executed / path.name, as_version=4).cells if "nbgrader" in c.metadata]
        checks = [c for c in checks if c.metadata.nbgrader["grade"] and c.cell_type == "code"]
        assert len(checks) >= 1, f"{path.name}: no graded exercise check"
        for cell in checks:
            printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            result = [o.data["text/plain"] for o in cell.outputs if o.output_type == "execute_result"]
            assert "✓" in printed and "is correct" in printed, f"{path.name}: {printed}"
            assert result == [str(cell.metadata.nbgrader["points"])], f"{path.name}: {result}"


@pytest.mark.slow
def test_a_rerun_reproduces_every_checked_output(executed: Path, tmp_path: Path) -> None:
    ini = tmp_path / "pytest.ini"  # nbval's own pytest run, outside this project's settings
    ini.write_text("[pytest]\n")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ini)]
    command += ["--rootdir", str(executed), "--nbval-lax", "--nbval-current-env"]
    command += ["--nbval-sanitize-with", str(SANITIZE)]
    command += [str(executed / p.name) for p in list_notebooks()]
    result = subprocess.run(command, env=dict(os.environ, MEDSSL_INTERACTIVE="0"), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_relative_data_dir_reaches_the_kernel_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    course = tmp_path / "course"
    course.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# tiny"),
        nbformat.v4.new_code_cell("data_dir = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('from pathlib import Path\nassert Path(data_dir, "marker").exists()'),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, course / "00_tiny.ipynb")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "marker").touch()
    monkeypatch.chdir(tmp_path)
    runs = run_notebooks(tmp_path / "out", data_dir="data", notebooks_dir=course)
    assert [r.status for r in runs] == ["ok"]


def _install_cell(path: Path) -> str:
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.source.startswith("# Colab, or a Python")]
    assert len(cells) == 1, f"{path.name}: want one install cell"
    return cells[0]


def test_every_notebook_opens_with_the_same_install_cell() -> None:
    notebooks = list_notebooks()
    for path in notebooks:
        code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert code[0] == _install_cell(notebooks[0]), f"{path.name}: the install cell must come first"


def _run_install_cell(monkeypatch: pytest.MonkeyPatch, package: str | None) -> list[list[str]]:
    import importlib.util
    import subprocess

    calls: list[list[str]] = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "medssl_lab" else real_find_spec(n, *a))
    monkeypatch.setattr(subprocess, "check_call", lambda cmd, **kw: calls.append(cmd))
    if package is None:
        monkeypatch.delenv("MEDSSL_PACKAGE", raising=False)
    else:
        monkeypatch.setenv("MEDSSL_PACKAGE", package)
    exec(_install_cell(list_notebooks()[0]), {})
    return calls


def test_the_install_cell_installs_a_missing_package_from_the_address_given(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _run_install_cell(monkeypatch, "/some/checkout")
    assert len(calls) == 1 and calls[0][-1] == "/some/checkout[course]" and calls[0][1:4] == ["-m", "pip", "install"]
    git = "git+https://github.com/someone/medssl-lab@main"
    assert _run_install_cell(monkeypatch, git)[0][-1] == f"medssl-lab[course] @ {git}"  # the extra, PEP 508 form
    with pytest.raises(RuntimeError, match="MEDSSL_PACKAGE"):
        _run_install_cell(monkeypatch, None)  # the committed notebooks name no repository


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("https://github.com/someone/medssl-lab.git", "someone/medssl-lab"),
        ("git@github.com:some-org/my.fork", "some-org/my.fork"),
        ("someone/medssl-lab", "someone/medssl-lab"),
    ],
)
def test_github_repository_reads_owner_and_name(remote: str, expected: str) -> None:
    assert github_repository(remote) == expected


def test_github_repository_refuses_other_hosts() -> None:
    with pytest.raises(ValueError, match="not a GitHub repository"):
        github_repository("https://gitlab.com/someone/medssl-lab.git")


def test_writing_course_links_sets_badges_and_every_install_address(tmp_path: Path) -> None:
    course = tmp_path / "notebooks"
    shutil.copytree(list_notebooks()[0].parent, course, ignore=shutil.ignore_patterns(".*"))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- course-links -->\nbadges go here\n<!-- /course-links -->\nrest\n")
    changed = write_course_links("someone/fork", "dev", readme=readme, notebooks_dir=course)
    assert len(changed) == 8
    text = readme.read_text()
    assert "mybinder.org/v2/gh/someone/fork/dev?urlpath=lab/tree/notebooks/00_data_tour.ipynb" in text
    assert "colab.research.google.com/github/someone/fork/blob/dev/notebooks/00_data_tour.ipynb" in text
    assert "badges go here" not in text and text.endswith("rest\n")
    for path in list_notebooks(course):
        assert 'PACKAGE = "git+https://github.com/someone/fork@dev"' in _install_cell(path)
        nbformat.validate(nbformat.read(path, as_version=4))
    assert write_course_links("someone/fork", "dev", readme=readme, notebooks_dir=course) == []  # idempotent
