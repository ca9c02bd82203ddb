"""The course as a website: executed notebooks into ``docs/course/``, the Sphinx build, and its internal links checked.

The site is built in CI without running the course (no data, no kernel, minutes instead of half an hour), so the
executed notebooks it shows are committed: :func:`copy_executed_notebooks` takes them from a run of
``medssl-lab notebooks run`` and makes them small enough to commit. :func:`build_site` runs Sphinx with ``-W`` (a
warning fails the build) and then :func:`internal_link_problems`, which finds the broken links and anchors Sphinx
itself lets through (raw HTML, notebook outputs, files a theme refers to).
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from medssl_lab.errors import import_extra
from medssl_lab.files import atomic_file

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
MAX_IMAGE_WIDTH = 1000
MAX_TEXT_LINES = 200
MAX_TEXT_CHARS = 20_000
#: metadata of a run that says nothing to a reader and changes every run
_RUN_METADATA = ("papermill", "execution", "ExecuteTime", "collapsed", "scrolled")
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def default_docs_dir() -> Path:
    """The repository's ``docs/`` folder (the site's source ships with the source tree, as the course does)."""
    return Path(__file__).resolve().parents[1] / "docs"


def copy_executed_notebooks(run_dir: str | Path, dest: str | Path | None = None) -> list[Path]:
    """Copy the executed notebooks of ``run_dir`` (``RUN_DIR/NN_*.ipynb``) into ``dest`` (``docs/course``), made small.

    Why: CI builds the site without executing the course, so the executed copies are committed, and they must be
    small and stable: papermill's and the widgets' metadata and execution timings are dropped, PNG figures wider
    than 1000 px are re-encoded at 1000 px, and very long text outputs are cut in the middle. The cell papermill
    injected (the parameters the run used) stays. A notebook with an error output or a code cell that never ran is
    refused, before anything is written, so the site never shows a half-run course. Numbered notebooks in ``dest``
    that the run does not have are removed.

    Returns:
        The notebooks written, in order.

    Raises:
        FileNotFoundError: ``run_dir`` holds no numbered notebooks.
        ValueError: a notebook has an error output or unexecuted code cells.
    """
    nbformat = import_extra("nbformat", "docs", "putting the executed notebooks into the site")
    run_dir, dest = Path(run_dir), Path(dest) if dest is not None else default_docs_dir() / "course"
    sources = sorted(run_dir.glob(NOTEBOOK_GLOB))
    if not sources:
        raise FileNotFoundError(
            f"no executed notebooks ({NOTEBOOK_GLOB}) in {run_dir}; "
            "run `medssl-lab notebooks run --profile cpu --out RUN_DIR` first"
        )
    notebooks = [(path, nbformat.read(path, as_version=4)) for path in sources]
    problems = [problem for path, nb in notebooks for problem in _execution_problems(path.name, nb)]
    if problems:
        raise ValueError("not copied, the run is not complete:\n  " + "\n  ".join(problems))
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for path, nb in notebooks:
        _make_small(nb)
        _hide_machine_paths(nb, _machine_paths(nb))
        with atomic_file(dest / path.name, permissions=0o644) as tmp:
            nbformat.write(nb, tmp)
        written.append(dest / path.name)
    for stale in set(dest.glob(NOTEBOOK_GLOB)) - set(written):
        stale.unlink()
    return written


def _execution_problems(name: str, nb: dict) -> list[str]:
    """Why ``nb`` is not a complete run: error outputs and code cells without an execution count."""
    problems = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code" or not cell["source"].strip():
            continue
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                problems.append(f"{name} cell {index}: error output {output.get('ename')}: {output.get('evalue')}")
        if cell.get("execution_count") is None:
            problems.append(f"{name} cell {index}: not executed")
    return problems


def _machine_paths(nb: dict) -> dict[str, str]:
    """This machine's folders as the run printed them -> what a reader should see instead, longest first.

    The run's output and data folders come from the cell papermill injected; the package's environment and checkout
    are this process's own. A committed page must name no folder of the machine that made it.
    """
    names: dict[str, str] = {}
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    for line in "".join(injected[0]["source"]).splitlines() if injected else []:
        key, _, value = (part.strip() for part in line.partition("="))
        if key in ("output_dir", "data_dir") and value.startswith(("'", '"')):
            names[value.strip("'\"")] = "outputs" if key == "output_dir" else "DATA_DIR"
    names[str(Path(sys.prefix))] = "VENV"
    names[str(default_docs_dir().parent)] = "."
    return dict(sorted(names.items(), key=lambda item: -len(item[0])))


def _hide_machine_paths(nb: dict, names: dict[str, str]) -> None:
    """Replace each of ``names`` in every cell's source and text output, in place."""

    def hide(text: str | list[str]) -> str:
        text = "".join(text)
        for path, name in names.items():
            text = text.replace(path, name)
        return text

    for cell in nb["cells"]:
        cell["source"] = hide(cell["source"])
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = hide(output["text"])
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/"):
                    output["data"][kind] = hide(value)


def _make_small(nb: dict) -> None:
    """Drop run metadata and widget views, shrink wide PNGs and cap long texts, in place."""
    nb["metadata"].pop("widgets", None)
    nb["metadata"].pop("papermill", None)
    for cell in nb["cells"]:
        for key in _RUN_METADATA:
            cell["metadata"].pop(key, None)
        for output in cell.get("outputs", []):
            if "text" in output:  # stream
                output["text"] = cap_text(output["text"])
            data = output.get("data")
            if not data:
                continue
            if _WIDGET_VIEW in data and len(data) > 1:  # the view needs a live kernel; keep its fallback
                del data[_WIDGET_VIEW]
            if "text/plain" in data:
                data["text/plain"] = cap_text(data["text/plain"])
            if "image/png" in data:
                data["image/png"], scale = shrink_png(data["image/png"])
                size = output.get("metadata", {}).get("image/png", {})
                for key in ("width", "height"):
                    if isinstance(size.get(key), (int, float)):
                        size[key] = round(size[key] * scale)


def shrink_png(encoded: str, max_width: int = MAX_IMAGE_WIDTH) -> tuple[str, float]:
    """A base64 PNG at most ``max_width`` px wide (aspect kept), and the scale applied (1.0: unchanged).

    Resampling adds colours, which PNG compresses badly, so an opaque figure loses its alpha channel and is stored
    with a 256-colour palette when that changes its pixels by less than one grey level on average (true of
    Matplotlib's plots and image grids), which keeps the shrunk figure about as small in bytes as the original.
    """
    import numpy as np
    from PIL import Image

    opened = Image.open(io.BytesIO(base64.b64decode(encoded)))
    if opened.width <= max_width:
        return encoded, 1.0
    scale = max_width / opened.width
    image = opened.convert("RGBA")
    if int(np.asarray(image)[..., 3].min()) == 255:
        image = image.convert("RGB")
    resized = image.resize((max_width, max(1, round(image.height * scale))), Image.Resampling.LANCZOS)
    if resized.mode == "RGB":
        palette = resized.quantize(256, method=Image.Quantize.MEDIANCUT)
        error = np.abs(np.asarray(palette.convert("RGB"), dtype=np.int16) - np.asarray(resized, dtype=np.int16))
        if float(error.mean()) < 1.0:
            resized = palette
    buffer = io.BytesIO()
    resized.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii"), scale


def cap_text(text: str, max_lines: int = MAX_TEXT_LINES, max_chars: int = MAX_TEXT_CHARS) -> str:
    """``text`` with its middle cut when longer than ``max_lines`` lines or ``max_chars`` characters.

    The start and the end stay, since a log's first lines say what ran and its last ones how it ended.
    """
    lines = text.splitlines(keepends=True)
    if len(lines) <= max_lines and len(text) <= max_chars:
        return text
    if len(lines) > max_lines:
        head, tail = lines[: max_lines // 2], lines[-(max_lines // 2) :]
        cut = len(lines) - len(head) - len(tail)
        text = "".join(head) + f"[... {cut} lines cut for the site ...]\n" + "".join(tail)
    if len(text) > max_chars:
        half = max_chars // 2
        text = text[:half] + f"\n[... {len(text) - 2 * half} characters cut for the site ...]\n" + text[-half:]
    return text


def build_site(out: str | Path, source: str | Path | None = None) -> Path:
    """Build the HTML site from ``source`` (``docs/``) into ``out``; any warning or broken internal link fails it.

    Sphinx runs in a fresh environment (``-E``), since an incremental build repeats no warning of an unchanged
    page and could pass with one. It builds in a temporary folder (myst-nb writes its ``jupyter_execute/`` beside
    the output folder, which would litter the folder above ``out``), and ``out`` is replaced only by a site that
    passed every check. Returns ``out``.

    Raises:
        RuntimeError: Sphinx failed (its warnings are in the message) or links in the built pages are broken.
        FileExistsError: ``out`` exists, is not empty and holds no earlier build of a Sphinx site.
    """
    out, source = Path(out), Path(source) if source is not None else default_docs_dir()
    import_extra("sphinx", "docs", "building the website")  # run below as python -m sphinx
    if out.exists() and any(out.iterdir()) and not (out / ".buildinfo").is_file():
        raise FileExistsError(f"{out} is not empty and is not an earlier build of the site; choose another --out")
    with tempfile.TemporaryDirectory(prefix="medssl-site-") as work:
        html, doctrees = Path(work) / "html", Path(work) / "doctrees"
        command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-E", "-q"]
        done = subprocess.run([*command, "-d", str(doctrees), str(source), str(html)], capture_output=True, text=True)
        if done.returncode != 0:
            lines = list(dict.fromkeys((done.stderr.strip() or done.stdout.strip()).splitlines()))  # once each
            shown = "\n".join(lines[:60]) + (f"\n... and {len(lines) - 60} more lines" if len(lines) > 60 else "")
            raise RuntimeError(f"sphinx-build failed (exit {done.returncode}) on {source}:\n{shown}")
        problems = internal_link_problems(html)
        if problems:
            raise RuntimeError(
                f"{len(problems)} broken internal links in the site of {source}:\n  " + "\n  ".join(problems)
            )
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(html, out)
    return out


class _Links(HTMLParser):
    """The ids (``id``, ``<a name>``) and the linked addresses (``href``, ``src``) of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif name in ("href", "src"):
                self.links.append(value)


def _parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    return parser


def internal_link_problems(html_dir: str | Path) -> list[str]:
    """Every internal link of the built pages in ``html_dir`` whose file or ``#fragment`` does not exist.

    Internal: relative or root-relative addresses (not ``http(s):``, ``mailto:``, ``data:``, ...), including those
    into ``_static/``, ``_images/`` and ``_sources/``. A link leaving ``html_dir`` is a problem too: the published
    site has nothing there. Returns ``"page: link -> problem"`` lines, page relative to ``html_dir``.
    """
    root = Path(html_dir).resolve()
    parsed: dict[Path, _Links] = {}

    def links_of(page: Path) -> _Links:
        if page not in parsed:
            parsed[page] = _parse(page)
        return parsed[page]

    problems = []
    for page in sorted(root.rglob("*.html")):
        for link in links_of(page).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not (parts.path or parts.fragment):
                continue
            path = unquote(parts.path)
            target = (root / path.lstrip("/")) if path.startswith("/") else (page.parent / path) if path else page
            target = target.resolve()
            if target.is_dir():
                target = target / "index.html"
            problem = None
            if not target.is_relative_to(root):
                problem = "outside the site"
            elif not target.is_file():
                problem = "no such file"
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in links_of(target).ids:
                    problem = f"no element with id {unquote(parts.fragment)!r} in {target.relative_to(root)}"
            if problem:
                problems.append(f"{page.relative_to(root)}: {link} -> {problem}")
    return problems
