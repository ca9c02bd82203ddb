"""The course as a student meets it: JupyterLab in a real browser, every notebook run in the smoke profile.

JupyterLab is started on 127.0.0.1 on a free port; Chromium (the distribution's package, found on the PATH or through
``MEDSSL_CHROMIUM``) is driven by Playwright. Each notebook is opened with its parameters set to the smoke profile
(the cell papermill would inject, here written into the copy the student opens), run with Run > Run All Cells, saved,
and checked: no error output in any cell, every explorer rendered as a widget, each explorer's figure redrawn (and
only one figure shown) when its control moves. The peak memory of what a Binder pod holds, the Jupyter server plus its
kernels, is sampled throughout. Screenshots of each notebook go to ``MEDSSL_BROWSER_OUT`` (default: the test's
temporary folder).

``MEDSSL_BROWSER_PROFILE`` (default ``smoke``) and ``MEDSSL_BROWSER_NOTEBOOKS`` (name prefixes, e.g. ``01,02``) run
other profiles or a part of the course: ``benchmarks/binder_footprint.py`` uses them to measure the cpu profile.

Skipped when Chromium or Playwright is missing, unless ``MEDSSL_REQUIRE_BROWSER=1`` (set by CI, which installs both).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import chromium as _chromium
from browser import require as _require

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: notebook -> the explorer it shows (a CSS selector of its control), or None
EXPLORERS = {
    "00_data_tour.ipynb": ".widget-slider",
    "01_pretraining.ipynb": ".widget-slider",
    "02_embeddings.ipynb": None,
    "03_clusters.ipynb": ".widget-dropdown select",
    "04_finetuning.ipynb": None,
    "05_robustness.ipynb": None,
    "06_your_own_data.ipynb": ".widget-dropdown select",
}
PROFILE = os.environ.get("MEDSSL_BROWSER_PROFILE", "smoke")
ONLY = [p for p in os.environ.get("MEDSSL_BROWSER_NOTEBOOKS", "").split(",") if p]
PER_NOTEBOOK_S = 600 if PROFILE == "smoke" else 3600
BINDER_LIMIT_MB = 2048


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _ServerMemory(threading.Thread):
    """Peak resident memory of the Jupyter server with its kernels (what a Binder pod holds), sampled every 0.5 s.

    Summing RSS counts the libraries that server and kernel share twice, so the total is an upper bound.
    """

    def __init__(self, server_pid: int) -> None:
        super().__init__(daemon=True)
        self.server_pid, self.peak_mb, self.peak_kernels_mb, self.running = server_pid, 0.0, 0.0, True

    def run(self) -> None:
        import psutil

        server = psutil.Process(self.server_pid)
        while self.running:
            try:
                children = server.children(recursive=True)
                kernels = [p for p in children if "ipykernel" in " ".join(p.cmdline())]
                total = sum(p.memory_info().rss for p in [server, *children]) / 2**20
                self.peak_mb = max(self.peak_mb, total)
                self.peak_kernels_mb = max(self.peak_kernels_mb, sum(p.memory_info().rss for p in kernels) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.5)


@pytest.fixture(scope="module")
def lab(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A JupyterLab server over copies of the notebooks, parameterised for the smoke profile."""
    if _chromium() is None:
        _require("Chromium")
    try:
        import playwright.sync_api  # noqa: F401
        from papermill.iorw import load_notebook_node
        from papermill.parameterize import parameterize_notebook
    except ImportError:
        _require("Playwright")
    import nbformat

    root = tmp_path_factory.mktemp("course")
    outputs = root / "outputs"
    params = {"profile": PROFILE, "data_dir": str(data_dir), "output_dir": str(outputs), "device": "cpu"}
    for name in _notebooks():
        nb = parameterize_notebook(load_notebook_node(str(NOTEBOOKS / name)), params)
        nbformat.write(nb, root / name)
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "MEDSSL_INTERACTIVE"}  # a live session: widgets
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            "--allow-root",
            f"--LabApp.workspaces_dir={root / '.workspaces'}",  # no tabs restored from other sessions
            f"--ServerApp.root_dir={root}",
            "--ServerApp.open_browser=False",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not start within 60 s")
    memory = _ServerMemory(server.pid)
    memory.start()
    shots = Path(os.environ.get("MEDSSL_BROWSER_OUT") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    yield {"url": url, "token": token, "root": root, "memory": memory, "shots": shots}
    memory.running = False
    server.terminate()
    server.wait(timeout=30)


def _notebooks() -> dict[str, str | None]:
    return {name: control for name, control in EXPLORERS.items() if not ONLY or name.startswith(tuple(ONLY))}


def _figure(page, output) -> str:
    """The image the explorer's output area shows now (exactly one)."""
    images = output.locator("img")
    count = images.count()
    assert count == 1, f"the explorer shows {count} figures for one state"
    return images.first.get_attribute("src") or ""


def _move_control(page, selector: str) -> None:
    control = page.locator(selector).first
    if selector.endswith("select"):
        options = control.locator("option").all_text_contents()
        control.select_option(index=1 if len(options) > 1 else 0)
    else:
        control.locator(".noUi-handle, .ui-slider-handle, [role=slider]").first.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")


def _close(page) -> None:
    """File > Close and Shut Down Notebook (accepting the confirmation): the next notebook starts alone."""
    page.locator(".lm-MenuBar-itemLabel", has_text="File").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Close and Shut Down Notebook").first.click()
    accept = page.locator(".jp-Dialog-button.jp-mod-accept")
    try:
        accept.first.click(timeout=5_000)
    except Exception:  # no confirmation asked
        pass
    page.locator(".jp-Notebook:visible").first.wait_for(state="detached", timeout=30_000)


def _run_all(page) -> None:
    """Run > Run All Cells, again until a cell has started (the menu does nothing while the kernel starts)."""
    for _ in range(12):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        for _ in range(10):
            prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()
            if any("*" in p or any(ch.isdigit() for ch in p) for p in prompts):
                return
            time.sleep(1)
    raise AssertionError("Run All Cells started no cell within 2 minutes (is the kernel starting?)")


def _wait_until_done(page, timeout_s: float) -> None:
    """Until no cell is queued or running for 3 s (all ran, or an error stopped the run: the saved file tells).

    Run All marks every cell queued at once, so a quiet moment is the end, not a gap between cells.
    """
    deadline, quiet = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()
        quiet = 0 if any("*" in p for p in prompts) else quiet + 1
        if quiet >= 3:
            return
        time.sleep(1)
    raise AssertionError(f"the notebook did not finish within {timeout_s:.0f} s")


def _check_saved(page, path: Path) -> None:
    """Save the notebook, then read the file: no error output, every code cell run."""
    page.keyboard.press("Control+s")
    time.sleep(2)
    saved = json.loads(path.read_text())
    errors = [o for c in saved["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    unrun = [c for c in saved["cells"] if c["cell_type"] == "code" and c.get("execution_count") is None]
    assert not unrun, f"{path.name}: {len(unrun)} code cells did not run"


def _check_explorer(page, name: str, control: str) -> None:
    """The explorer is a live widget showing one figure, and moving its control redraws that figure."""
    page.locator(control).first.wait_for(timeout=30_000)
    output = page.locator(".widget-output").filter(has=page.locator("img")).first
    before = _figure(page, output)
    _move_control(page, control)
    deadline = time.monotonic() + 60
    while _figure(page, output) == before and time.monotonic() < deadline:
        time.sleep(1)
    assert _figure(page, output) != before, f"{name}: the explorer's figure did not change"


@pytest.mark.slow
def test_the_course_runs_in_a_real_browser(lab: dict) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for name, control in _notebooks().items():
            page.goto(f"{lab['url']}/lab/tree/{name}?reset&token={lab['token']}")  # reset: no other tabs
            page.locator(".jp-Notebook:visible").first.wait_for(timeout=60_000)
            page.wait_for_timeout(3000)  # the kernel starts; cells run as soon as it is ready
            try:
                _run_all(page)
                _wait_until_done(page, PER_NOTEBOOK_S)
            finally:
                page.screenshot(path=str(lab["shots"] / f"{Path(name).stem}.png"), full_page=True)
            _check_saved(page, lab["root"] / name)
            if control is not None:
                _check_explorer(page, name, control)
            _close(page)
        browser.close()
    memory = lab["memory"]
    print(
        f"profile {PROFILE}, notebooks {', '.join(_notebooks())}: Jupyter server + kernels peaked at "
        f"{memory.peak_mb:.0f} MB (kernels {memory.peak_kernels_mb:.0f} MB); screenshots in {lab['shots']}"
    )
    assert 0 < memory.peak_mb < BINDER_LIMIT_MB, f"server and kernels peaked at {memory.peak_mb:.0f} MB, over 2 GB"
