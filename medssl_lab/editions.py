"""The student edition of the course, made from the committed (teacher) notebooks without nbgrader.

The committed notebooks are the teacher's edition: solutions sit between nbgrader's markers
(``### BEGIN SOLUTION`` / ``### END SOLUTION``), so a teacher who uses nbgrader generates and
grades assignments from them directly. For everyone else, :func:`write_student_edition` does
what nbgrader's release step does, with friendlier stubs: solution code becomes a
``NotImplementedError`` that names the function to write, a written model answer becomes a
prompt, hidden tests and mark schemes are removed, and nbgrader's metadata is dropped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from medssl_lab.files import atomic_file
from medssl_lab.notebooks import list_notebooks

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
#: regions removed outright (nbgrader's hidden tests and mark schemes)
HIDDEN = (("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"), ("=== BEGIN MARK SCHEME ===", "=== END MARK SCHEME ==="))
ANSWER_PROMPT = "*Write your answer here.*"
_DEF = re.compile(r"^\s*def (\w+)\(", re.MULTILINE)


class EditionError(ValueError):
    """A notebook's markers are unbalanced, so no edition can be made from it."""


def _regions(lines: list[str], begin: str, end: str, where: str) -> list[tuple[int, int]]:
    """(first, last) line numbers of each ``begin`` .. ``end`` region."""
    regions, start = [], None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == begin:
            if start is not None:
                raise EditionError(f"{where}: '{begin}' on line {i + 1} before the '{end}' of line {start + 1}")
            start = i
        elif text == end:
            if start is None:
                raise EditionError(f"{where}: '{end}' on line {i + 1} without a '{begin}' before it")
            regions.append((start, i))
            start = None
    if start is not None:
        raise EditionError(f"{where}: '{begin}' on line {start + 1} is never closed by '{end}'")
    return regions


def _stub(lines: list[str], first: int) -> list[str]:
    indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
    above = _DEF.findall("\n".join(lines[:first]))
    name = above[-1] if above else "this exercise"
    return [
        f"{indent}# YOUR CODE HERE: the exercise above says what {name} must return",
        f"{indent}raise NotImplementedError({json.dumps(name + ' is not solved yet')})",
    ]


def student_source(source: str, cell_type: str, where: str) -> str:
    """One cell's source in the student edition: solutions stubbed, hidden regions removed."""
    lines = source.split("\n")
    for begin, end in HIDDEN:
        for first, last in reversed(_regions(lines, begin, end, where)):
            del lines[first : last + 1]
    for first, last in reversed(_regions(lines, BEGIN, END, where)):
        lines[first : last + 1] = _stub(lines, first) if cell_type == "code" else [ANSWER_PROMPT]
    return "\n".join(lines)


def student_notebook(nb: dict, name: str = "notebook") -> dict:
    """A copy of notebook JSON ``nb`` as the student edition (cells left empty by hidden regions dropped)."""
    cells = []
    for index, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        new = student_source(source, cell["cell_type"], f"{name}, cell {index} ({cell.get('id', '?')})")
        if new.strip() == "" and source.strip() != "":
            continue
        metadata = {k: v for k, v in cell.get("metadata", {}).items() if k != "nbgrader"}
        cells.append({**cell, "metadata": metadata, "source": new.splitlines(keepends=True)})
    return {**nb, "cells": cells}


def write_student_edition(out_dir: str | Path, notebooks_dir: str | Path | None = None) -> list[Path]:
    """Write the student edition of every numbered notebook into ``out_dir``; returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in list_notebooks(notebooks_dir):
        nb = student_notebook(json.loads(path.read_text()), path.name)
        with atomic_file(out / path.name) as tmp:
            Path(tmp).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(out / path.name)
    return written
