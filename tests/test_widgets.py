"""The explorers: what they show, headless (static figures) and as ipywidgets whose controls are moved here.

Interactive explorers draw into an Output widget through IPython's ``display``; the tests record the figures handed
to it and compare the pixels shown with what the library computes for the controls' values.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import importlib.util  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from medssl_lab import widgets as W  # noqa: E402
from medssl_lab.augment import MultiCropAugment, MultiCropConfig, denormalize, make_generator  # noqa: E402
from medssl_lab.config import INTERACTIVE_ENV  # noqa: E402
from medssl_lab.data.intensity import apply_window  # noqa: E402
from medssl_lab.data.synthetic import make_phantoms  # noqa: E402
from medssl_lab.data.windowing import WINDOW_PRESETS  # noqa: E402

PRESETS = {"lung": (-600.0, 1500.0), "bone": (400.0, 1800.0)}


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures the interactive explorers display, in order."""
    import IPython.display

    figures: list[Figure] = []

    def display(*objects: Any, **_kwargs: Any) -> None:
        figures.extend(o for o in objects if isinstance(o, Figure))

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(W, "display", display, raising=False)  # should the module import it at its top
    return figures


def pixels(fig: Figure) -> list[np.ndarray]:
    """The image of every panel that shows one, in panel order."""
    return [np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images]


def controls(widget: Any) -> dict[str, Any]:
    """The widget's controls by their description (the boxes around them walked)."""
    found: dict[str, Any] = {}
    for child in getattr(widget, "children", ()):
        if getattr(child, "description", ""):
            found[child.description] = child
        found.update(controls(child))
    return found


def test_interactive_only_in_a_kernel_or_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from tqdm import auto, std

    from medssl_lab.config import progress_bar

    has_ipywidgets = importlib.util.find_spec("ipywidgets") is not None
    monkeypatch.delenv(INTERACTIVE_ENV, raising=False)
    assert W.resolve_interactive(None) is False  # pytest is no Jupyter kernel
    monkeypatch.setenv(INTERACTIVE_ENV, "1")
    assert W.resolve_interactive(None) is has_ipywidgets and W.resolve_interactive(False) is False
    with progress_bar(total=1, disable=True) as bar:
        assert type(bar) is auto.tqdm and auto.tqdm is not std.tqdm  # notebook-aware
    monkeypatch.setenv(INTERACTIVE_ENV, "0")
    assert W.resolve_interactive(None) is False
    with progress_bar(total=1, disable=True) as bar:  # headless: plain text, never a widget saved in the notebook
        assert type(bar) is std.tqdm
    img = make_phantoms(1, size=32, seed=0).images[0]
    assert isinstance(W.window_level_explorer(img.astype(float), PRESETS), Figure)  # the variable decides


def test_window_level_explorer_shows_what_apply_window_computes(shown: list[Figure]) -> None:
    hu = make_phantoms(1, size=32, seed=0, hu=True).images[0]
    fig = W.window_level_explorer(hu, PRESETS, interactive=False)
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["lung", "bone"]
    for panel, (center, width) in zip(pixels(fig), PRESETS.values(), strict=True):
        np.testing.assert_array_equal(panel, apply_window(hu, center, width))
    assert not np.array_equal(*pixels(fig))  # the two windows look different
    default = W.window_level_explorer(hu, interactive=False)
    assert len(pixels(default)) == len(WINDOW_PRESETS)
    np.testing.assert_array_equal(pixels(default)[-1], apply_window(hu, *list(WINDOW_PRESETS.values())[-1]))

    pytest.importorskip("ipywidgets")
    widget = W.window_level_explorer(hu, PRESETS, interactive=True)
    c = controls(widget)
    preset, center, width = c["preset"], c["center"], c["width"]
    np.testing.assert_array_equal(pixels(shown[-1])[0], apply_window(hu, *PRESETS["lung"]))  # the first preset
    preset.value = "bone"
    assert (center.value, width.value) == PRESETS["bone"]
    assert shown[-1].axes[0].get_title().startswith("bone")
    np.testing.assert_array_equal(pixels(shown[-1])[0], apply_window(hu, *PRESETS["bone"]))
    center.value = 0.0
    assert preset.value == "custom"
    np.testing.assert_array_equal(pixels(shown[-1])[0], apply_window(hu, 0.0, PRESETS["bone"][1]))
    width.value = 300.0
    np.testing.assert_array_equal(pixels(shown[-1])[0], apply_window(hu, 0.0, 300.0))
    assert shown[-1].axes[0].get_title().startswith("custom")


def test_augmentation_explorer_shows_the_views_its_knobs_and_seed_ask_for(shown: list[Figure]) -> None:
    img = make_phantoms(1, size=32, seed=0).images[0]
    asked: list[dict] = []

    def make(overrides: dict) -> MultiCropAugment:
        asked.append(overrides)
        return MultiCropAugment(MultiCropConfig(global_size=16, local_size=8, n_local=2, **overrides))

    defaults = {name: spec[3] for name, spec in W.AUGMENT_KNOBS.items()}
    fig = W.augmentation_explorer(img, make, interactive=False, n_samples=2, seed=3)
    assert asked == [W.knob_overrides(**defaults)]
    views = make(asked[-1])(torch.from_numpy(img).expand(2, *img.shape).contiguous(), generator=make_generator(3))
    panels = pixels(fig)
    assert len(panels) == 2 * (1 + len(views)) == 10  # per draw: the input, 2 global and 2 local views
    for row in range(2):
        np.testing.assert_allclose(panels[row * 5], img / 255.0, atol=1e-6)
        for j, view in enumerate(views):
            expected = denormalize(view[row].float()).clamp(0, 1).squeeze().numpy()
            np.testing.assert_allclose(panels[row * 5 + 1 + j], expected, atol=1e-6)

    pytest.importorskip("ipywidgets")
    asked.clear()
    c = controls(W.augmentation_explorer(img, make, interactive=True, n_samples=1))
    assert asked == [W.knob_overrides(**defaults)]
    first = pixels(shown[-1])
    c["rotation"].value = 40.0
    assert asked[-1] == W.knob_overrides(**{**defaults, "rotation": 40.0})
    rotated = pixels(shown[-1])
    np.testing.assert_array_equal(rotated[0], first[0])  # the input stays
    assert not all(np.array_equal(a, b) for a, b in zip(rotated[1:], first[1:]))
    c["seed"].value = 1
    assert asked[-1] == W.knob_overrides(**{**defaults, "rotation": 40.0})  # a new draw of the same knobs
    assert not all(np.array_equal(a, b) for a, b in zip(pixels(shown[-1])[1:], rotated[1:]))
    c["seed"].value, c["rotation"].value = 0, defaults["rotation"]
    assert all(np.array_equal(a, b) for a, b in zip(pixels(shown[-1]), first, strict=True))  # same seed, same views


def test_cluster_browser_shows_the_images_of_each_cluster_largest_first(shown: list[Figure]) -> None:
    images = make_phantoms(40, size=16, seed=1).images
    sizes = {3: 12, 0: 10, 4: 8, 1: 6, 2: 4}  # cluster id -> size, ids not in size order
    assignments = np.random.default_rng(0).permutation(np.repeat(list(sizes), list(sizes.values())))
    labels = np.array(["CT", "MR"] * 20)

    def shown_indices(fig: Figure) -> list[int]:
        found = []
        for panel in pixels(fig):
            same = [i for i in range(len(images)) if np.array_equal(images[i], panel)]
            assert len(same) == 1, "every phantom must be told apart by its pixels"
            found.append(same[0])
        return found

    fig = W.cluster_browser(images, assignments, labels, interactive=False, per_page=4, max_clusters=3)
    rows = np.array(shown_indices(fig)).reshape(3, 4)
    assert [set(assignments[row]) for row in rows] == [{3}, {0}, {4}]  # the three largest clusters, largest first
    assert all(len(set(row)) == 4 for row in rows)  # a page of distinct images
    assert [fig.axes[4 * r].get_ylabel() for r in range(3)] == [
        "cluster 3 (n=12)",
        "cluster 0 (n=10)",
        "cluster 4 (n=8)",
    ]
    assert [ax.get_xlabel() for ax in fig.axes] == [labels[i] for i in rows.ravel()]

    pytest.importorskip("ipywidgets")
    dropdown = controls(W.cluster_browser(images, assignments, labels, interactive=True, per_page=4))["cluster"]
    assert [value for _, value in dropdown.options] == [3, 0, 4, 1, 2]
    first = shown_indices(shown[-1])
    assert len(first) == 4 and set(assignments[first]) == {3}  # the largest cluster first
    dropdown.value = 2
    assert sorted(shown_indices(shown[-1])) == np.flatnonzero(assignments == 2).tolist()  # all 4 of cluster 2
    majority = max(("CT", "MR"), key=lambda name: int((labels[assignments == 2] == name).sum()))
    title = shown[-1].get_suptitle()
    assert title.startswith("cluster 2 (n=4), ") and title.endswith(majority)
    assert [ax.get_title() for ax in shown[-1].axes if ax.images] == [labels[i] for i in shown_indices(shown[-1])]
