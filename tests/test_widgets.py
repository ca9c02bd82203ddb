"""The explorers: static figures headless, ipywidgets in a live kernel."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from medssl_lab import widgets as W  # noqa: E402
from medssl_lab.config import INTERACTIVE_ENV  # noqa: E402


def test_widgets_static_and_interactive(monkeypatch: pytest.MonkeyPatch) -> None:
    from medssl_lab.augment import MultiCropAugment, MultiCropConfig
    from medssl_lab.data.synthetic import make_phantoms

    monkeypatch.delenv(INTERACTIVE_ENV, raising=False)
    assert W.resolve_interactive(None) is False  # pytest is no Jupyter kernel
    monkeypatch.setenv(INTERACTIVE_ENV, "0")
    assert W.resolve_interactive(None) is False
    from tqdm import auto, std

    from medssl_lab.config import progress_bar

    with progress_bar(total=1, disable=True) as bar:  # headless: plain text, never a widget saved in the notebook
        assert type(bar) is std.tqdm
    monkeypatch.setenv(INTERACTIVE_ENV, "1")
    with progress_bar(total=1, disable=True) as bar:
        assert type(bar) is auto.tqdm and auto.tqdm is not std.tqdm  # notebook-aware
    monkeypatch.setenv(INTERACTIVE_ENV, "0")
    hu = make_phantoms(1, size=32, seed=0, hu=True).images[0]
    img = make_phantoms(1, size=32, seed=0).images[0]
    images = make_phantoms(40, size=16, seed=1).images
    assignments = np.arange(40) % 5
    labels = np.array(["CT", "MR"] * 20)

    presets = {"lung": (-600.0, 1500.0), "bone": (400.0, 1800.0)}
    fig = W.window_level_explorer(hu, presets)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert len(W.window_level_explorer(hu).axes) >= 2  # default CT presets
    fig = W.augmentation_explorer(img, interactive=False)
    assert isinstance(fig, Figure) and len(fig.axes) > 2

    def make(overrides: dict) -> MultiCropAugment:
        return MultiCropAugment(MultiCropConfig(global_size=16, local_size=8, n_local=2, **overrides))

    assert len(W.augmentation_explorer(img, make, interactive=False, n_samples=1).axes) == 1 + 4
    fig = W.cluster_browser(images, assignments, labels, interactive=False, per_page=4, max_clusters=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 3 * 4

    ipywidgets = pytest.importorskip("ipywidgets")
    for widget in (
        W.window_level_explorer(hu, presets, interactive=True),
        W.augmentation_explorer(img, make, interactive=True, n_samples=1),
        W.cluster_browser(images, assignments, labels, interactive=True, per_page=4),
    ):
        assert isinstance(widget, ipywidgets.Widget)
    # Moving the controls redraws without error.
    wl = W.window_level_explorer(hu, presets, interactive=True)
    dropdown, center, _width = wl.children[0].children
    dropdown.value = "bone"
    assert center.value == 400.0
    center.value = 0.0
    assert dropdown.value == "custom"
    browser = W.cluster_browser(images, assignments, labels, interactive=True, per_page=4)
    browser.children[0].value = browser.children[0].options[-1][1]
