"""Readers of a generated DeepLesion-format folder, shared by the generator tests."""
import os

import numpy as np

from mmlesion.datasets.png_codec import raw_to_hu, read_uint16_png


def png_files(root):
    """Relative paths of every slice PNG under ``root/Images_png``, sorted."""
    found = []
    for series in sorted(os.listdir(os.path.join(root, 'Images_png'))):
        for name in sorted(os.listdir(os.path.join(root, 'Images_png', series))):
            found.append(os.path.join('Images_png', series, name))
    return found


def csv_numbers(field):
    """A quoted multi-valued DL_info.csv field (``"1, 2, 3"``) as floats."""
    return [float(v) for v in field.split(', ')]


def read_hu(out, series, k):
    """Slice ``k`` of ``series`` in HU (float64)."""
    path = os.path.join(out, 'Images_png', series, f'{k:03d}.png')
    return raw_to_hu(read_uint16_png(path)).astype(np.float64)
