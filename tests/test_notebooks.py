"""The notebook course: every notebook runs headless (papermill, smoke profile, real data) and checks itself.

Each notebook asserts its own key results, so a wrong result fails its execution. On top,
the executed copies are checked the way nbval's lax mode would: every code cell ran, no
cell produced an error, and the parameters that papermill injected are the ones asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from medssl_lab.notebooks import list_notebooks, run_notebooks
from medssl_lab.profiles import PROFILES

SHARED_PARAMETERS = {"profile", "data_dir", "output_dir", "device", "seed"}


@pytest.fixture(scope="module")
def executed(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("notebooks")
    run_notebooks(out, profile="smoke", data_dir=str(data_dir), device="cpu", seed=0)
    return out


def test_committed_notebooks_are_clean_and_parameterised() -> None:
    notebooks = list_notebooks()
    assert [p.name[:2] for p in notebooks] == ["00", "01", "02", "03", "04", "05"]
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: want exactly one cell tagged 'parameters'"
        names = {
            line.split("=")[0].strip()
            for line in tagged[0].source.splitlines()
            if "=" in line and not line.lstrip().startswith("#")
        }
        assert SHARED_PARAMETERS <= names, f"{path.name}: parameters cell lacks {SHARED_PARAMETERS - names}"
        assert nb.cells[0].cell_type == "markdown", f"{path.name}: should open with what it teaches"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name}: commit notebooks stripped"
        table = next(c.source for c in nb.cells if "}[profile]" in c.source)
        missing = [p for p in PROFILES if f'"{p}": dict(' not in table]
        assert not missing, f"{path.name}: its per-profile settings lack {missing}"


def test_every_notebook_runs_in_smoke_profile(executed: Path) -> None:
    summary = json.loads((executed / "summary.json").read_text())
    assert [r["status"] for r in summary["runs"]] == ["ok"] * 6
    assert (executed / "summary.md").read_text().count("| ok |") == 6
    assert (executed / "pretrain" / "checkpoint.pt").exists()  # written by 01, read by the later ones


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
