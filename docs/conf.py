"""Sphinx configuration of the medssl-lab site: the course, its results and the API reference.

Why Sphinx + myst-nb + furo: autodoc builds the API reference from the package's Google-style docstrings
(napoleon); myst-nb renders the committed, already executed notebooks of ``docs/course/`` without running them
(``nb_execution_mode = "off"``), so building the site needs no data and no kernel; and ``-W`` turns every broken
reference into a build error. Build it with ``medssl-lab docs build --out site``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the package of this checkout, installed or not

project = "medssl-lab"
author = "medssl-lab contributors"
copyright = "medssl-lab contributors"
html_title = "medssl-lab"

extensions = [
    "myst_nb",  # Markdown pages and .ipynb notebooks (also registers myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

exclude_patterns = ["_build", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
html_theme = "furo"

# MyST: ``#section`` links and heading anchors within and across pages; $...$ left alone (prices, shell).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# The notebooks in docs/course/ are executed copies (medssl-lab docs notebooks --from RUN_DIR); never re-run here.
nb_execution_mode = "off"
nb_merge_streams = True

# API reference: Google-style docstrings; type hints as text in the description, so that a hint naming a type
# Sphinx cannot resolve (torch, numpy) never becomes a broken cross-reference.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
# Heavy imports are real (the package is installed with them); nothing is mocked, so the reference shows the code
# as it is.

suppress_warnings: list[str] = []
