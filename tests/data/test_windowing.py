"""Display windows: the CT presets, the file's own window, and the uint8 fallback, on a real CT file."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from medssl_lab.data.dicom import read_dicom
from medssl_lab.data.intensity import apply_window
from medssl_lab.data.windowing import WINDOW_PRESETS, to_uint8, window_image
from medssl_lab.errors import DataError


def test_window_presets_values() -> None:
    assert WINDOW_PRESETS == {
        "lung": (-600.0, 1500.0),
        "mediastinum": (50.0, 350.0),
        "brain": (40.0, 80.0),
        "bone": (400.0, 1800.0),
        "abdomen": (40.0, 400.0),
    }


def test_window_image_presets_and_pairs() -> None:
    ct = read_dicom(get_testdata_file("CT_small.dcm"))
    for name, (center, width) in WINDOW_PRESETS.items():
        np.testing.assert_array_equal(window_image(ct, name), apply_window(ct.pixels, center, width))
    np.testing.assert_array_equal(window_image(ct, "BONE"), window_image(ct, (400, 1800)))
    brain = window_image(ct, "brain")
    lung = window_image(ct, "lung")
    assert (brain == 0).mean() > (lung == 0).mean()  # the narrow window clips far more
    with pytest.raises(ValueError, match="lung"):
        window_image(ct, "liver")
    with pytest.raises(DataError, match="CT_small.dcm"):
        window_image(ct, "file")  # CT_small has no window of its own
    u8 = to_uint8(ct)  # min-max fallback
    assert u8.min() == 0 and u8.max() == 255
    assert u8[0][ct.pixels[0] == -896.0].max() == 0
