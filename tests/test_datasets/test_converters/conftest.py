"""Helpers for the converter tests: build DL_info.csv rows and 16-bit slice PNGs in tmp_path."""
import csv

import numpy as np
import pytest

from mmlesion.datasets.converters.dl_info import DL_INFO_HEADER


def _row(patient=1, study=1, series=1, key=12, recist='56, 66, 76, 96, 60, 90, 72, 70',
         box='51, 61, 81, 101', diameters='36.0555, 20.0', location='0.2, 0.3, 0.5',
         lesion_type='-1', noisy='0', slice_range=None, spacing='0.8, 0.8, 2.5',
         size='512, 512', window='-175, 275', gender='F', age='71', split='1', file_name=None):
    """One DL_info.csv record as 18 strings (x/y 1-based, like the real file)."""
    if slice_range is None:
        slice_range = f'{key - 2}, {key + 2}'
    if file_name is None:
        file_name = f'{patient:06d}_{study:02d}_{series:02d}_{key:03d}.png'
    return [file_name, str(patient), str(study), str(series), str(key), recist, box, diameters,
            location, lesion_type, noisy, slice_range, spacing, size, window, gender, age, split]


def _write_csv(path, rows, header=DL_INFO_HEADER):
    with open(path, 'w', newline='') as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
        w.writerow(header)
        w.writerows(rows)
    return path


def _write_slices(image_dir, series, slices, size=(512, 512)):
    """16-bit PNGs (raw = HU + 32768) ``Images_png/series/KKK.png``; width, height = size."""
    import cv2
    folder = image_dir / series
    folder.mkdir(parents=True, exist_ok=True)
    img = np.full((size[1], size[0]), 32768 - 1000, dtype=np.uint16)
    for z in slices:
        assert cv2.imwrite(str(folder / f'{z:03d}.png'), img)


@pytest.fixture
def dl_row():
    return _row


@pytest.fixture
def write_dl_info():
    return _write_csv


@pytest.fixture
def write_slices():
    return _write_slices
