"""Run the numbered notebook course headless with papermill, in order, passing shared parameters.

Each notebook is executed into the output folder (executed copy beside the results it
writes); a summary records each one's status, wall time and the kernel's peak memory
(sampled with psutil while it runs). The run fails when any notebook fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from medssl_lab.errors import import_extra

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


def default_notebooks_dir() -> Path:
    """The repository's ``notebooks/`` folder (the course ships with the source tree)."""
    return Path(__file__).resolve().parents[1] / "notebooks"


def list_notebooks(folder: str | Path | None = None) -> list[Path]:
    """The numbered notebooks of ``folder``, in order."""
    folder = Path(folder) if folder is not None else default_notebooks_dir()
    found = sorted(folder.glob(NOTEBOOK_GLOB))
    if not found:
        raise FileNotFoundError(f"no numbered notebooks ({NOTEBOOK_GLOB}) in {folder}; pass --notebooks-dir")
    return found


@dataclass
class NotebookRun:
    """What happened to one notebook."""

    name: str
    status: str  # "ok" or "failed"
    seconds: float
    peak_rss_mb: float
    error: str = ""


class _PeakMemory:
    """Samples the resident memory of this process's children (the kernel) in a background thread."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> _PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_notebooks(
    out_dir: str | Path,
    profile: str = "smoke",
    data_dir: str | None = None,
    device: str = "auto",
    seed: int = 0,
    notebooks_dir: str | Path | None = None,
    only: list[str] | None = None,
    timeout_s: int = 3600,
    extra: dict[str, object] | None = None,
) -> list[NotebookRun]:
    """Execute the course in order; stop at the first failure and raise after writing the summary.

    ``extra`` sets further parameters (e.g. ``{"train": False}``); papermill passes each to every
    notebook, and a notebook without that parameter simply gains an unused variable.
    """
    pm = import_extra("papermill", "course", "running the notebook course")
    os.environ["MEDSSL_INTERACTIVE"] = "0"  # kernels inherit it: widgets fall back to static plots headless
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # The kernels run in the notebooks' folder, so a relative data folder is made absolute here.
    data_dir = str(Path(data_dir).resolve()) if data_dir is not None else None
    params: dict[str, object] = {
        "profile": profile,
        "data_dir": data_dir,
        "output_dir": str(out),
        "device": device,
        "seed": seed,
    }
    params.update(extra or {})
    runs: list[NotebookRun] = []
    for path in list_notebooks(notebooks_dir):
        if only and not any(path.name.startswith(o) for o in only):
            continue
        start = time.perf_counter()
        with _PeakMemory() as memory:
            try:
                pm.execute_notebook(
                    str(path),
                    str(out / path.name),
                    parameters=params,
                    cwd=str(path.parent),
                    kernel_name="python3",
                    progress_bar=False,
                    execution_timeout=timeout_s,
                )
                status, error = "ok", ""
            except Exception as exc:  # papermill raises PapermillExecutionError and friends
                status, error = "failed", str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        runs.append(NotebookRun(path.name, status, time.perf_counter() - start, memory.peak / 2**20, error))
        print(
            f"{path.name:<28} {status:<7} {runs[-1].seconds:7.1f} s  peak {runs[-1].peak_rss_mb:6.0f} MB  {error}",
            flush=True,
        )
        if status != "ok":
            break
    _write_summary(out, runs, params)
    failed = [r for r in runs if r.status != "ok"]
    if failed:
        raise RuntimeError(f"notebook {failed[0].name} failed: {failed[0].error}; see {out / failed[0].name}")
    return runs


def _write_summary(out: Path, runs: list[NotebookRun], params: dict) -> None:
    (out / "summary.json").write_text(json.dumps({"parameters": params, "runs": [asdict(r) for r in runs]}, indent=1))
    lines = ["| notebook | status | time (s) | kernel peak memory (MB) |", "|---|---|---:|---:|"]
    lines += [f"| {r.name} | {r.status} | {r.seconds:.0f} | {r.peak_rss_mb:.0f} |" for r in runs]
    lines.append(
        f"| total | | {sum(r.seconds for r in runs):.0f} | {max((r.peak_rss_mb for r in runs), default=0):.0f} |"
    )
    (out / "summary.md").write_text(
        f"Profile `{params['profile']}`, device `{params['device']}`.\n\n" + "\n".join(lines) + "\n"
    )


# Binder and Colab open a notebook from a public GitHub repository, so their links, and the
# address the notebooks' install cell installs the package from, name the repository of your copy.
INSTALL_ADDRESS = re.compile(r'^PACKAGE = "[^"\n]*"', re.MULTILINE)
LINKS_BLOCK = re.compile(r"(<!-- course-links -->\n).*?(\n<!-- /course-links -->)", re.DOTALL)
_GITHUB_REMOTE = re.compile(r"github\.com[:/]([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")


def github_repository(remote: str | None = None) -> str:
    """``owner/name`` of a GitHub remote address (default: this checkout's ``origin``)."""
    if remote is None:
        root = default_notebooks_dir().parent
        try:
            remote = subprocess.run(
                ["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError) as exc:
            raise ValueError(f"{root} has no git remote 'origin'; pass the repository as OWNER/NAME") from exc
    if re.fullmatch(r"[\w.-]+/[\w.-]+", remote):
        return remote
    match = _GITHUB_REMOTE.search(remote)
    if not match:
        raise ValueError(f"{remote!r} is not a GitHub repository; Binder and Colab links need one (OWNER/NAME)")
    return f"{match[1]}/{match[2]}"


def course_links(repository: str, branch: str = "main", notebooks_dir: str | Path | None = None) -> dict[str, dict]:
    """For each notebook, its Binder (JupyterLab) and Colab addresses in ``repository`` at ``branch``."""
    links = {}
    for path in list_notebooks(notebooks_dir):
        relative = f"notebooks/{path.name}"
        links[path.name] = {
            "binder": f"https://mybinder.org/v2/gh/{repository}/{branch}?urlpath=lab/tree/{relative}",
            "colab": f"https://colab.research.google.com/github/{repository}/blob/{branch}/{relative}",
        }
    return links


def write_course_links(
    repository: str, branch: str = "main", readme: str | Path | None = None, notebooks_dir: str | Path | None = None
) -> list[Path]:
    """Point the README's badges and every notebook's install cell at ``repository``; returns the files changed."""
    notebooks = list_notebooks(notebooks_dir)
    readme = Path(readme) if readme is not None else default_notebooks_dir().parent / "README.md"
    first = course_links(repository, branch, notebooks_dir)[notebooks[0].name]
    badges = (
        f"[![Binder](https://mybinder.org/badge_logo.svg)]({first['binder']})\n"
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({first['colab']})"
    )
    text = readme.read_text()
    if not LINKS_BLOCK.search(text):
        raise ValueError(f"{readme} has no <!-- course-links --> ... <!-- /course-links --> block to write into")
    changes = {readme: LINKS_BLOCK.sub(lambda m: m[1] + badges + m[2], text)}
    address = f'PACKAGE = "git+https://github.com/{repository}@{branch}"'
    for path in notebooks:
        nb = json.loads(path.read_text())
        cells = [c for c in nb["cells"] if c["cell_type"] == "code" and INSTALL_ADDRESS.search("".join(c["source"]))]
        if len(cells) != 1:
            raise ValueError(f"{path.name}: want one install cell with a line 'PACKAGE = \"...\"', found {len(cells)}")
        source = INSTALL_ADDRESS.sub(address, "".join(cells[0]["source"]))
        cells[0]["source"] = source.splitlines(keepends=True)
        changes[path] = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    changed = [path for path, new in changes.items() if path.read_text() != new]
    for path in changed:
        path.write_text(changes[path])
    return changed
