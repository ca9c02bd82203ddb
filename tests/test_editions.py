"""The student edition: solutions become stubs, model answers prompts, hidden regions vanish, nothing else changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medssl_lab.cli import main
from medssl_lab.editions import ANSWER_PROMPT, BEGIN, END, EditionError, student_notebook, student_source
from medssl_lab.notebooks import list_notebooks

SOLVED = '''def area(w, h):
    """The area."""
    ### BEGIN SOLUTION
    return w * h
    ### END SOLUTION
'''


def test_solution_code_becomes_a_stub_naming_the_function() -> None:
    source = student_source(SOLVED, "code", "here")
    assert "w * h" not in source and "BEGIN" not in source
    assert 'raise NotImplementedError("area is not solved yet")' in source
    assert '    """The area."""' in source  # what the student reads stays
    namespace: dict = {}
    exec(source, namespace)
    with pytest.raises(NotImplementedError, match="area is not solved yet"):
        namespace["area"](2, 3)


def test_a_written_answer_becomes_a_prompt() -> None:
    source = student_source(f"**Your answer:**\n\n{BEGIN}\nThe model answer.\n{END}", "markdown", "here")
    assert source == f"**Your answer:**\n\n{ANSWER_PROMPT}"


def test_hidden_tests_and_mark_schemes_are_removed() -> None:
    source = "check(f)\n### BEGIN HIDDEN TESTS\nassert f(2) == 4\n### END HIDDEN TESTS\n"
    assert student_source(source, "code", "here") == "check(f)\n"
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "=== BEGIN MARK SCHEME ===\nx\n=== END MARK SCHEME ==="}
        ]
    }
    assert student_notebook(nb)["cells"] == []


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (f"{BEGIN}\nx = 1\n", "never closed"),
        (f"x = 1\n{END}\n", "without a"),
        (f"{BEGIN}\n{BEGIN}\n{END}\n", "before the"),
    ],
)
def test_unbalanced_markers_are_refused_with_the_place(source: str, words: str) -> None:
    with pytest.raises(EditionError, match=words):
        student_source(source, "code", "00_x.ipynb, cell 3")


def _solution_lines(nb: dict) -> set[str]:
    lines, inside = set(), False
    for cell in nb["cells"]:
        for line in "".join(cell["source"]).splitlines():
            text = line.strip()
            if text in (BEGIN, END):
                inside = text == BEGIN
            elif inside and text and not text.startswith("#"):
                lines.add(text)
    return lines


def test_the_course_has_exercises_and_no_solution_survives_in_the_student_edition(tmp_path: Path) -> None:
    assert main(["notebooks", "student", "--out", str(tmp_path)]) == 0
    for path in list_notebooks():
        teacher = json.loads(path.read_text())
        student = json.loads((tmp_path / path.name).read_text())
        solutions = _solution_lines(teacher)
        assert len(solutions) >= 2, f"{path.name}: want exercises with solutions"
        text = "\n".join("".join(c["source"]) for c in student["cells"])
        survivors = [line for line in solutions if line in text]
        assert not survivors, f"{path.name}: solution lines left in the student edition: {survivors}"
        assert not any("nbgrader" in c["metadata"] for c in student["cells"])
        assert [c["id"] for c in student["cells"]] == [c["id"] for c in teacher["cells"]]  # nothing else removed


def test_graded_cells_carry_valid_nbgrader_metadata() -> None:
    ids: list[str] = []
    for path in list_notebooks():
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell["metadata"].get("nbgrader")
            if meta is None:
                continue
            ids.append(meta["grade_id"])
            assert meta["schema_version"] == 3
            source = "".join(cell["source"])
            if meta["solution"]:
                assert BEGIN in source and END in source, (
                    f"{path.name} {meta['grade_id']}: a solution cell without markers"
                )
            if meta["grade"] and not meta["solution"]:  # an autograded test: its last line is the score
                points = meta["points"]
                assert source.rstrip().splitlines()[-1].split("#")[0].strip().endswith(f".points({points})"), meta
    assert len(ids) == len(set(ids)), "grade ids must be unique across the course"


# ---------------------------------------------------------------------------- the course in both editions, and nbgrader

CHECK_CELL = ".points("  # the last line of every check cell


def _check_cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code" and CHECK_CELL in "".join(c["source"])]


def _text(value: str | list[str]) -> str:
    """nbformat stores multi-line text either as one string or as a list of lines."""
    return "".join(value)


def _printed(cell: dict) -> str:
    return "".join(_text(o.get("text", "")) for o in cell["outputs"] if o["output_type"] == "stream")


def _result(cell: dict) -> str:
    return "".join(_text(o["data"]["text/plain"]) for o in cell["outputs"] if o["output_type"] == "execute_result")


@pytest.mark.slow
def test_the_student_edition_runs_to_the_end_with_every_check_unsolved(data_dir: Path, tmp_path: Path) -> None:
    from medssl_lab.editions import write_student_edition
    from medssl_lab.notebooks import run_notebooks

    write_student_edition(tmp_path / "student")
    run_notebooks(tmp_path / "run", "smoke", str(data_dir), "cpu", notebooks_dir=tmp_path / "student")
    for path in list_notebooks(tmp_path / "student"):
        executed = tmp_path / "run" / path.name
        cells = json.loads(executed.read_text())["cells"]
        errors = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"] if o["output_type"] == "error"]
        assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
        checks = _check_cells(executed)
        assert checks, f"{path.name}: no exercise check ran"
        for cell in checks:
            assert "is not solved yet" in _printed(cell) and _result(cell) == "0", (path.name, _printed(cell))


def _nbgrader(course: Path, *args: str) -> None:
    env = dict(
        os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", MEDSSL_INTERACTIVE="0"
    )
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _solved_copy(release: dict, source: dict) -> dict:
    """The released notebook with every solution cell answered as in the teacher's source."""
    answers = {
        c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in source["cells"] if "nbgrader" in c["metadata"]
    }
    solved = json.loads(json.dumps(release))
    for cell in solved["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            cell["source"] = answers[meta["grade_id"]]
    return solved


#: autograded by nbgrader itself; every check of every notebook is scored by the two edition runs above and in
#: test_notebooks (full points for the teacher's answers), so one notebook keeps CI short
AUTOGRADED = ("00_data_tour.ipynb",)


@pytest.mark.slow
def test_nbgrader_generates_the_course_and_autogrades_the_data_tour(data_dir: Path, tmp_path: Path) -> None:
    """Every notebook releases; full marks for a copy answered like the teacher's, zero for the released copy."""
    from nbgrader.api import Gradebook
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    course, assignment = tmp_path / "course", "medssl"
    source = course / "source" / assignment
    source.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.ExecutePreprocessor.timeout = 1800\n")
    params = {"profile": "smoke", "data_dir": str(data_dir), "output_dir": str(tmp_path / "outputs"), "device": "cpu"}
    for path in list_notebooks():
        nbformat_node = parameterize_notebook(load_notebook_node(str(path)), params)
        (source / path.name).write_text(json.dumps(nbformat_node, indent=1))
    _nbgrader(course, "generate_assignment", assignment, "--create")
    release = course / "release" / assignment
    assert sorted(p.name for p in release.glob("*.ipynb")) == [p.name for p in list_notebooks()]
    for student in ("solved", "unsolved"):
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        for name in AUTOGRADED:
            nb = json.loads((release / name).read_text())
            if student == "solved":
                nb = _solved_copy(nb, json.loads((source / name).read_text()))
            (folder / name).write_text(json.dumps(nb))
    _nbgrader(course, "autograde", assignment, "--create")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for name in AUTOGRADED:
            notebook = name.removesuffix(".ipynb")
            solved = gradebook.find_submission_notebook(notebook, assignment, "solved")
            unsolved = gradebook.find_submission_notebook(notebook, assignment, "unsolved")
            assert solved.max_code_score >= 4, name
            assert solved.code_score == solved.max_code_score, [
                (g.name, g.auto_score) for g in solved.grades if g.auto_score != g.max_score
            ]
            assert unsolved.code_score == 0 and unsolved.written_score == 0, name
            assert solved.needs_manual_grade, name  # the written answers wait for the teacher
