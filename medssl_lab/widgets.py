"""ipywidgets explorers for the notebooks, with static matplotlib fallbacks for headless runs.

Each explorer returns an ipywidgets object when it runs interactively and a
:class:`~matplotlib.figure.Figure` otherwise, so the same notebook cell works in
JupyterLab/Binder and under papermill or CI, and never raises because no frontend is
there.

When is it interactive? ``interactive=True`` or ``False`` decides. With ``None``
(the default) the rule is, in order:

1. the environment variable ``MEDSSL_INTERACTIVE`` (``1``/``true`` or ``0``/``false``)
   if set;
2. otherwise interactive only if ipywidgets imports **and** the code runs inside a
   Jupyter kernel (IPython's ``ZMQInteractiveShell``); plain Python, pytest and
   IPython in a terminal get the static figure.

A papermill run also executes in a Jupyter kernel and cannot be told apart from a
live one, so headless runs should pass ``interactive=False`` (e.g. from the notebook's
``parameters`` cell) or set ``MEDSSL_INTERACTIVE=0``. If ipywidgets is missing or
building the widget fails, the explorer warns and returns the static figure instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from medssl_lab.config import interactive_setting
from medssl_lab.data.windowing import WINDOW_PRESETS
from medssl_lab.evaluation.clusters import as_numpy, label_vector
from medssl_lab.viz import plot_image_grid, plot_prototype_gallery, plot_views, plot_windows

__all__ = [
    "augmentation_explorer",
    "cluster_browser",
    "resolve_interactive",
    "window_level_explorer",
]


# --------------------------------------------------------------------------- mode


def _ipywidgets() -> Any | None:
    try:
        import ipywidgets
    except Exception:  # ImportError, or a broken install
        return None
    return ipywidgets


def _in_jupyter_kernel() -> bool:
    try:
        from IPython import get_ipython
    except Exception:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def resolve_interactive(interactive: bool | None = None) -> bool:
    """Whether an explorer should build widgets (see the module docstring for the rule)."""
    if interactive is not None:
        if interactive and _ipywidgets() is None:
            warnings.warn(
                'ipywidgets is not installed (pip install "medssl-lab[course]"); showing a static figure instead',
                stacklevel=3,
            )
            return False
        return bool(interactive)
    setting = interactive_setting()
    if setting is not None:
        return setting and _ipywidgets() is not None
    return _ipywidgets() is not None and _in_jupyter_kernel()


def _redraw(out: Any, draw: Callable[[], Figure]) -> None:
    """Draw a new figure into an Output widget; errors are shown there, never raised."""
    from IPython.display import display

    with out:
        out.clear_output(wait=True)
        try:
            fig = draw()
        except Exception as exc:  # a bad slider combination must not kill the widget
            print(f"could not draw: {type(exc).__name__}: {exc}")
            return
        display(fig)
        plt.close(fig)


def _static_fallback(build: Callable[[], Any], static: Callable[[], Figure]) -> Any:
    """Build the widget; if that fails for any reason, warn and return the static figure."""
    try:
        return build()
    except Exception as exc:
        warnings.warn(
            f"interactive explorer failed ({type(exc).__name__}: {exc}); showing a static figure", stacklevel=3
        )
        return static()


def _as_2d(image: Any, name: str) -> np.ndarray:
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be one (H, W) image, got shape {arr.shape}")
    return arr


# --------------------------------------------------------------------------- window / level


def window_level_explorer(
    hu_image: Any,
    presets: Mapping[str, tuple[float, float]] | None = None,
    interactive: bool | None = None,
    panel_size: float = 2.6,
) -> Any:
    """Explore display windows (center/width, "window/level") of an image in modality units (HU for CT).

    Shows why one CT slice looks so different under the lung, brain or bone window, and
    so why the window is part of the data pipeline.

    Args:
        hu_image: one ``(H, W)`` float image, e.g. ``DicomImage.pixels[0]``.
        presets: name -> (center, width); default the CT presets of
            :data:`medssl_lab.data.dicom.WINDOW_PRESETS`.
        interactive: see :func:`resolve_interactive`.

    Returns:
        Interactive: a ``VBox`` with a preset dropdown, center and width sliders and the
        image. Static: a figure with one panel per preset.
    """
    hu = _as_2d(hu_image, "hu_image").astype(np.float32)
    windows = _checked_windows(presets)

    def static() -> Figure:
        return plot_windows(hu, windows, panel_size)

    if not resolve_interactive(interactive):
        return static()
    return _static_fallback(lambda: _window_level_widget(hu, windows, panel_size), static)


def _checked_windows(presets: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    """The presets (default the CT ones) as a dict, or a ValueError naming the one that is not (center, width > 0)."""
    windows = dict(presets) if presets is not None else dict(WINDOW_PRESETS)
    if not windows:
        raise ValueError("presets is empty; pass e.g. {'brain': (40, 80)}")
    for name, cw in windows.items():
        if len(cw) != 2 or not float(cw[1]) > 0:
            raise ValueError(f"preset {name!r} must be (center, width) with width > 0, got {cw}")
    return windows


def _window_level_widget(hu: np.ndarray, windows: dict[str, tuple[float, float]], panel_size: float) -> Any:
    """A preset dropdown, center and width sliders kept in step with it, and the image under the chosen window."""
    import ipywidgets as w

    lo, hi = float(np.nanmin(hu)), float(np.nanmax(hu))
    span = max(hi - lo, 1.0)
    c_min = min(lo, *(c for c, _ in windows.values()))
    c_max = max(hi, *(c for c, _ in windows.values()))
    w_max = max(2.0 * span, *(wd for _, wd in windows.values()))
    first = next(iter(windows.values()))
    dropdown = w.Dropdown(options=[*windows, "custom"], value=next(iter(windows)), description="preset")
    center = w.FloatSlider(
        value=first[0], min=c_min, max=c_max, step=span / 500, description="center", continuous_update=False
    )
    width = w.FloatSlider(
        value=first[1],
        min=max(span / 500, 1e-3),
        max=w_max,
        step=span / 500,
        description="width",
        continuous_update=False,
    )
    out = w.Output()
    syncing = {"on": False}

    def draw() -> Figure:
        return plot_windows(hu, {dropdown.value: (center.value, width.value)}, panel_size * 1.5)

    def on_preset(change: dict) -> None:
        if change["new"] in windows:
            syncing["on"] = True
            center.value, width.value = windows[change["new"]]
            syncing["on"] = False
            _redraw(out, draw)

    def on_slider(change: dict) -> None:
        if syncing["on"]:
            return
        if dropdown.value != "custom" and tuple(windows.get(dropdown.value, ())) != (center.value, width.value):
            syncing["on"] = True
            dropdown.value = "custom"
            syncing["on"] = False
        _redraw(out, draw)

    dropdown.observe(on_preset, names="value")
    center.observe(on_slider, names="value")
    width.observe(on_slider, names="value")
    _redraw(out, draw)
    return w.VBox([w.HBox([dropdown, center, width]), out])


# --------------------------------------------------------------------------- augmentation


#: Slider knobs of :func:`augmentation_explorer`: name -> (min, max, step, default).
AUGMENT_KNOBS: dict[str, tuple[float, float, float, float]] = {
    "rotation": (0.0, 45.0, 1.0, 15.0),  # max rotation, degrees
    "crop_scale": (0.1, 1.0, 0.05, 0.4),  # smallest area fraction of a global crop
    "noise": (0.0, 0.2, 0.01, 0.05),  # largest Gaussian noise std (images in [0, 1])
    "gamma": (1.0, 2.5, 0.05, 1.4),  # gamma drawn in [1/g, g]
}


def knob_overrides(rotation: float, crop_scale: float, noise: float, gamma: float) -> dict[str, Any]:
    """Slider values -> :class:`~medssl_lab.augment.MultiCropConfig` overrides."""
    return {
        "max_rotation_deg": float(rotation),
        "global_scale": (float(crop_scale), 1.0),
        "noise_std": (0.0, float(noise)),
        "noise_p": 1.0 if noise > 0 else 0.0,
        "gamma": (1.0 / float(gamma), float(gamma)),
    }


def _default_make_augment() -> Callable[[dict[str, Any]], Any]:
    """The cpu profile's views, with the knobs' overrides."""

    def make(overrides: dict[str, Any]) -> Any:
        from dataclasses import replace

        from medssl_lab.augment import MultiCropAugment
        from medssl_lab.pretrain import PretrainConfig

        return MultiCropAugment(replace(PretrainConfig.for_profile("cpu").augment_config(), **overrides))

    return make


def augmentation_explorer(
    image_uint8: Any,
    make_augment: Callable[[dict[str, Any]], Any] | None = None,
    interactive: bool | None = None,
    n_samples: int = 2,
    seed: int = 0,
    panel_size: float = 1.6,
) -> Any:
    """Turn the augmentation knobs (rotation, crop scale, noise, gamma) and watch the views change.

    Too weak and the views are trivially alike; too strong and they no longer show the
    same anatomy: the explorer makes that trade-off visible.

    Args:
        image_uint8: one ``(H, W)`` uint8 image.
        make_augment: ``overrides -> augment``; it receives a dict of
            :class:`~medssl_lab.augment.MultiCropConfig` fields (see
            :func:`knob_overrides`) and returns a
            :class:`~medssl_lab.augment.MultiCropAugment` (or any callable mapping a
            ``(B, H, W)`` batch to a list of views). Default: the ``cpu`` profile.
        interactive: see :func:`resolve_interactive`.
        n_samples: random draws (rows) per redraw.
        seed: seed of the draws.

    Returns:
        Interactive: a ``VBox`` with four sliders, a seed box and the views. Static: the
        views at the default knob values (one figure).
    """
    image = _as_2d(image_uint8, "image_uint8")
    make = make_augment or _default_make_augment()
    defaults = {name: spec[3] for name, spec in AUGMENT_KNOBS.items()}

    def static() -> Figure:
        return plot_views(image, make(knob_overrides(**defaults)), n_samples, seed, panel_size)

    if not resolve_interactive(interactive):
        return static()

    def build() -> Any:
        import ipywidgets as w

        sliders = {
            name: w.FloatSlider(value=d, min=lo, max=hi, step=st, description=name, continuous_update=False)
            for name, (lo, hi, st, d) in AUGMENT_KNOBS.items()
        }
        seed_box = w.IntText(value=seed, description="seed")
        out = w.Output()

        def draw() -> Figure:
            values = {name: s.value for name, s in sliders.items()}
            return plot_views(image, make(knob_overrides(**values)), n_samples, int(seed_box.value), panel_size)

        for s in [*sliders.values(), seed_box]:
            s.observe(lambda _change: _redraw(out, draw), names="value")
        _redraw(out, draw)
        controls = list(sliders.values())
        return w.VBox([w.HBox(controls[:2]), w.HBox([*controls[2:], seed_box]), out])

    return _static_fallback(build, static)


# --------------------------------------------------------------------------- clusters


def cluster_browser(
    images: Any,
    assignments: Any,
    labels: Any = None,
    interactive: bool | None = None,
    per_page: int = 16,
    max_clusters: int = 8,
    seed: int = 0,
    panel_size: float = 1.1,
) -> Any:
    """Browse the images of each cluster (e.g. each prototype's hard assignments).

    Args:
        images: ``(N, H, W)`` images.
        assignments: ``(N,)`` cluster ids (:func:`medssl_lab.evaluation.clusters.assign_prototypes`).
        labels: optional ``(N,)`` labels shown under the images.
        interactive: see :func:`resolve_interactive`.
        per_page: images shown per cluster (a seeded random sample of larger clusters).
        max_clusters: clusters in the static gallery (the largest ones).

    Returns:
        Interactive: a ``VBox`` with a dropdown of clusters (largest first, with size and
        majority label) and the images. Static: a gallery, one row per large cluster.
    """
    imgs = np.asarray(images)
    a = as_numpy(assignments).reshape(-1)
    if imgs.ndim != 3 or len(imgs) != len(a):
        raise ValueError(f"need (N, H, W) images and (N,) assignments, got {imgs.shape} and {a.shape}")
    if len(a) == 0:
        raise ValueError("cluster_browser got no images")
    lab = None if labels is None else label_vector(labels, len(a))
    order, size_of, members = _cluster_pages(a, per_page, seed)

    def describe(c: Any) -> str:
        text = f"cluster {c} (n={size_of[c]})"
        if lab is not None:
            vals, cnt = np.unique(lab[a == c].astype(str), return_counts=True)
            text += f", {cnt.max() / cnt.sum():.0%} {vals[cnt.argmax()]}"
        return text

    def static() -> Figure:
        shown = {c: members[c] for c in order.tolist()[:max_clusters]}
        per_row = min(per_page, max(len(v) for v in shown.values()))
        return plot_prototype_gallery(
            imgs,
            shown,
            labels=lab,
            max_prototypes=max_clusters,
            per_row=per_row,
            counts=size_of,
            panel_size=panel_size,
            row_name="cluster",
        )

    if not resolve_interactive(interactive):
        return static()

    def build() -> Any:
        import ipywidgets as w

        dropdown = w.Dropdown(options=[(describe(c), c) for c in order.tolist()], description="cluster")
        out = w.Output()
        ncols = min(8, per_page)

        def draw() -> Figure:
            c = dropdown.value
            return plot_image_grid(imgs, members[c], lab, describe(c), ncols, panel_size)

        dropdown.observe(lambda _change: _redraw(out, draw), names="value")
        _redraw(out, draw)
        return w.VBox([dropdown, out])

    return _static_fallback(build, static)


def _cluster_pages(assignments: np.ndarray, per_page: int, seed: int) -> tuple[np.ndarray, dict, dict]:
    """Clusters largest first (ties by id), their sizes, and the images shown of each (a seeded sample when larger)."""
    clusters, sizes = np.unique(assignments, return_counts=True)
    order = clusters[np.lexsort((clusters, -sizes))]
    size_of = dict(zip(clusters.tolist(), sizes.tolist()))
    rng = np.random.default_rng(seed)
    members = {}
    for c in order.tolist():
        idx = np.flatnonzero(assignments == c)
        members[c] = np.sort(rng.choice(idx, per_page, replace=False)) if len(idx) > per_page else idx
    return order, size_of, members
