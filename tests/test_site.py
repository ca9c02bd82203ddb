"""The course as a website: executed notebooks made small, the link check, and the built site opened in Chromium.

The slow test builds docs/ exactly as ``medssl-lab docs build`` does (Sphinx with ``-W``, then every internal link
and anchor checked), serves it on 127.0.0.1 and opens the home page, every notebook page and the API reference in the
distribution's Chromium: each page loads, every image on it decodes, each notebook page shows a figure, and no link,
stylesheet or script it asks the server for is missing.
"""

from __future__ import annotations

import base64
import functools
import io
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag

import nbformat
import numpy as np
import pytest
from browser import CHROMIUM_ARGS, chromium, require
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image

from medssl_lab.site import build_site, cap_text, copy_executed_notebooks, internal_link_problems

DOCS = Path(__file__).resolve().parents[1] / "docs"
COURSE_PAGES = [f"course/{path.stem}.html" for path in sorted((DOCS / "course").glob("*.ipynb"))]


# --- the link check ---------------------------------------------------------------------------------------------


def test_internal_link_problems_names_missing_files_and_fragments(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.html").write_text('<h1 id="there">B</h1><a name="old"></a><img src="../logo.png">')
    (tmp_path / "logo.png").write_bytes(b"png")
    (tmp_path / "a.html").write_text(
        '<p id="top">A</p>'
        '<a href="sub/b.html">good</a> <a href="sub/b.html#there">good</a> <a href="sub/b.html#old">good</a>'
        '<a href="#top">good</a> <a href="https://example.org/x#y">external</a> <a href="mailto:x@y.z">mail</a>'
        '<img src="data:image/png;base64,AAAA"> <a href="sub/">folder without index</a>'
        '<a href="missing.html">bad</a> <a href="sub/b.html#nowhere">bad</a> <a href="#gone">bad</a>'
        '<link href="_static/missing.css" rel="stylesheet"> <a href="../outside.html">bad</a>'
    )
    problems = internal_link_problems(tmp_path)
    assert problems == [
        "a.html: sub/ -> no such file",
        "a.html: missing.html -> no such file",
        "a.html: sub/b.html#nowhere -> no element with id 'nowhere' in sub/b.html",
        "a.html: #gone -> no element with id 'gone' in a.html",
        "a.html: _static/missing.css -> no such file",
        "a.html: ../outside.html -> outside the site",
    ]


def test_a_site_with_good_links_has_no_problems(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<a href="page.html#s%C3%A9">page</a><a href="./">home</a>')
    (tmp_path / "page.html").write_text('<section id="sé"><a href="index.html">back</a></section>')
    assert internal_link_problems(tmp_path) == []


def test_the_build_never_replaces_a_folder_that_is_not_an_earlier_site(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an earlier build of the site"):
        build_site(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --- executed notebooks made small --------------------------------------------------------------------------------


def _png(width: int, height: int) -> str:
    """A plot-like PNG: white with a few solid bars (few colours, as Matplotlib's figures have)."""
    pixels = np.full((height, width, 4), 255, dtype=np.uint8)
    for i, colour in enumerate([(31, 119, 180), (255, 127, 14), (44, 160, 44)]):
        pixels[height // 4 : height - 10, 100 + i * width // 4 : 100 + i * width // 4 + width // 8, :3] = colour
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _executed(cells: list, name: str = "00_tour.ipynb", folder: Path | None = None) -> Path:
    """A notebook as papermill leaves it: counts, papermill and widget metadata, an injected-parameters cell."""
    nb = new_notebook(cells=cells)
    nb.metadata["papermill"] = {"duration": 1.5, "parameters": {"profile": "smoke"}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    for count, cell in enumerate((c for c in cells if c.cell_type == "code"), start=1):
        cell.execution_count = count
        cell.metadata["papermill"] = {"duration": 0.1, "status": "completed"}
        cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00"}
    assert folder is not None
    path = folder / name
    nbformat.write(nb, path)
    return path


def _parameters_cell() -> nbformat.NotebookNode:
    return new_code_cell('profile = "smoke"\n', metadata={"tags": ["injected-parameters"]})


def test_a_notebook_with_an_error_output_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    run, dest = tmp_path / "run", tmp_path / "course"
    run.mkdir()
    _executed([new_code_cell("1 + 1", outputs=[new_output("execute_result", {"text/plain": "2"})])], folder=run)
    bad = new_code_cell("1 / 0", outputs=[new_output("error", ename="ZeroDivisionError", evalue="division by zero")])
    _executed([new_markdown_cell("# Two"), bad], name="01_two.ipynb", folder=run)
    with pytest.raises(ValueError, match=r"01_two.ipynb cell 1: error output ZeroDivisionError: division by zero"):
        copy_executed_notebooks(run, dest)
    assert not dest.exists()


def test_a_code_cell_that_never_ran_is_refused(tmp_path: Path) -> None:
    _executed([new_code_cell("x = 1")], folder=tmp_path)
    nb = nbformat.read(tmp_path / "00_tour.ipynb", as_version=4)
    nb.cells.append(new_code_cell("print(x)"))  # execution_count None: the run stopped before it
    nbformat.write(nb, tmp_path / "00_tour.ipynb")
    with pytest.raises(ValueError, match=r"00_tour.ipynb cell 1: not executed"):
        copy_executed_notebooks(tmp_path, tmp_path / "course")


def test_copies_name_no_folder_of_the_machine_that_ran_them(tmp_path: Path) -> None:
    run, data = tmp_path / "run", tmp_path / "data"
    run.mkdir()
    injected = new_code_cell(f'data_dir = "{data}"\noutput_dir = "{run}"\n', metadata={"tags": ["injected-parameters"]})
    printed = new_code_cell(
        "print(x)", outputs=[new_output("stream", name="stdout", text=f"read {data}/a.npz, wrote {run}/pretrain\n")]
    )
    _executed([injected, printed], folder=run)
    copied = (
        (tmp_path / "course" / "00_tour.ipynb").read_text() if copy_executed_notebooks(run, tmp_path / "course") else ""
    )
    assert str(tmp_path) not in copied
    assert 'data_dir = \\"DATA_DIR\\"' in copied and "read DATA_DIR/a.npz, wrote outputs/pretrain" in copied


def test_copies_are_small_figures_shrunk_texts_capped_run_metadata_dropped(tmp_path: Path) -> None:
    run, dest = tmp_path / "run", tmp_path / "course"
    run.mkdir()
    dest.mkdir()
    (dest / "07_renamed_since.ipynb").write_text("{}")  # a notebook the course no longer has
    log = "".join(f"step {i}\n" for i in range(1000))
    figures = new_code_cell(
        "plot()",
        outputs=[
            new_output("display_data", {"image/png": _png(2400, 600), "text/plain": "<Figure>"}),
            new_output("display_data", {"image/png": _png(640, 480), "text/plain": "<Figure>"}),
            new_output("stream", name="stdout", text=log),
        ],
    )
    widget = new_code_cell(
        "explorer()",
        outputs=[
            new_output(
                "display_data",
                {"application/vnd.jupyter.widget-view+json": {"model_id": "abc"}, "text/plain": "VBox(...)"},
            )
        ],
    )
    source = _executed([new_markdown_cell("# Tour"), _parameters_cell(), figures, widget], folder=run)
    original = nbformat.read(source, as_version=4)

    (written,) = copy_executed_notebooks(run, dest)

    assert written == dest / "00_tour.ipynb"
    assert sorted(p.name for p in dest.iterdir()) == ["00_tour.ipynb"]
    nb = nbformat.read(written, as_version=4)
    assert "papermill" not in nb.metadata and "widgets" not in nb.metadata
    assert all("papermill" not in c.metadata and "execution" not in c.metadata for c in nb.cells)
    assert nb.cells[1].metadata["tags"] == ["injected-parameters"] and nb.cells[1].source == 'profile = "smoke"\n'
    big, small, stream = nb.cells[2].outputs
    shrunk = Image.open(io.BytesIO(base64.b64decode(big.data["image/png"])))
    assert shrunk.size == (1000, 250)
    assert small.data["image/png"] == original.cells[2].outputs[1].data["image/png"]  # narrow enough: untouched
    assert len(stream.text.splitlines()) <= 201
    assert stream.text.startswith("step 0\n") and stream.text.endswith("step 999\n")
    assert "800 lines cut" in stream.text
    assert nb.cells[3].outputs[0].data == {"text/plain": "VBox(...)"}  # the view needs a live kernel


def test_cap_text_keeps_short_texts_and_cuts_one_long_line() -> None:
    assert cap_text("a\nb\n") == "a\nb\n"
    capped = cap_text("x" * 50_000, max_chars=1000)
    assert len(capped) < 1100 and "49000 characters cut" in capped


def test_an_empty_run_folder_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="medssl-lab notebooks run"):
        copy_executed_notebooks(tmp_path, tmp_path / "course")


# --- the real site, built and opened in Chromium ----------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/ built as ``medssl-lab docs build`` builds it: -W, then every internal link checked (or it raises)."""
    return build_site(tmp_path_factory.mktemp("site") / "html")


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site over HTTP on 127.0.0.1 (a free port), as a web server would publish it."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_the_site_builds_with_warnings_as_errors_and_no_broken_link(site: Path) -> None:
    assert internal_link_problems(site) == []
    assert (site / "index.html").is_file() and (site / "api.html").is_file()
    assert COURSE_PAGES, "docs/course/ holds no executed notebooks (medssl-lab docs notebooks --from RUN_DIR)"
    for page in COURSE_PAGES:
        assert (site / page).is_file(), f"{page} was not built"
    api = (site / "api.html").read_text()
    for name in ("medssl_lab.pretrain.trainer.pretrain", "medssl_lab.evaluation.downstream.train_classifier"):
        assert f'id="{name}"' in api, f"the API reference lacks {name}"


def _record_error(response: Any, failed: list[str]) -> None:
    if response.status >= 400:
        failed.append(f"{response.url} HTTP {response.status}")


@pytest.mark.slow
def test_the_site_in_a_real_browser(served: str) -> None:
    if chromium() is None:
        require("Chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require("Playwright")
    failed: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("requestfailed", lambda request: failed.append(f"{request.url} ({request.failure})"))
        page.on("response", lambda response: _record_error(response, failed))
        checked: dict[str, str] = {}  # URL without fragment -> its HTML
        for name in ["index.html", "api.html", *COURSE_PAGES]:
            response = page.goto(served + name, wait_until="load")
            assert response is not None and response.status == 200, f"{name}: HTTP {response and response.status}"
            assert page.title().strip(), f"{name} has no title"
            page.wait_for_function("Array.from(document.images).every(img => img.complete)", timeout=30_000)
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
            blank = [src for src, width in images if width == 0]
            assert not blank, f"{name}: images that do not show: {blank}"
            if name.startswith("course/"):
                figures = page.eval_on_selector_all(".cell_output img", "els => els.filter(e => e.naturalWidth > 0)")
                assert figures, f"{name} shows no figure"
            links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            for link in {link for link in links if link.startswith(served)}:
                url, fragment = urldefrag(link)
                if url not in checked:
                    reply = page.request.get(url)
                    assert reply.status == 200, f"{name}: {link} -> HTTP {reply.status}"
                    checked[url] = reply.text() if url.endswith(".html") or url.endswith("/") else ""
                if fragment and checked[url]:
                    ids = set(re.findall(r'\b(?:id|name)="([^"]+)"', checked[url]))
                    assert unquote(fragment) in ids, f"{name}: {link} -> no element with that id"
        browser.close()
    assert not failed, "requests that failed: " + ", ".join(failed)


#: modules the API reference leaves out, and why: commands (their --help is their reference) and modules whose
#: names their package re-exports (documented there once; twice would be two targets for one name)
NOT_IN_API = {
    "medssl_lab.cli": "command",
    "medssl_lab.notebooks": "command",
    "medssl_lab.editions": "command",
    "medssl_lab.site": "command",
    "medssl_lab.data.dicom_image": "re-exported by medssl_lab.data.dicom",
}
REEXPORTING_PACKAGES = ("medssl_lab.viz.", "medssl_lab.exercises.")


def test_the_api_reference_documents_every_module() -> None:
    package = DOCS.parent / "medssl_lab"
    modules = {
        ".".join(path.relative_to(package.parent).with_suffix("").parts)
        for path in package.rglob("*.py")
        if path.name != "__init__.py"
    }
    listed = set(re.findall(r"^\.\. automodule:: (\S+)$", (DOCS / "api.md").read_text(), re.MULTILINE))
    missing = sorted(m for m in modules - listed if m not in NOT_IN_API and not m.startswith(REEXPORTING_PACKAGES))
    assert not missing, f"docs/api.md lacks {missing}: add an automodule line in its layer"
