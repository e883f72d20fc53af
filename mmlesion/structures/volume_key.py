"""Names of DeepLesion series, slices and sub-volumes.

DeepLesion names a slice file ``PPPPPP_SS_RR_KKK.png`` (patient, study, series, slice index) and
stores it at ``Images_png/PPPPPP_SS_RR/KKK.png``.  Slice indices are DeepLesion's absolute
indices as they appear in file names and in ``Slice_range``.  A *sub-volume* (a contiguous run of
slices released around key slices) is named as in the Lesion Harvester releases:
``PPPPPP_SS_RR_SSS-EEE`` with inclusive absolute start and end slice indices.
"""
import re
from typing import NamedTuple

_VOLUME_RE = re.compile(r'^(\d{6})_(\d{2})_(\d{2})_(\d+)-(\d+)(?:\.annot)?$')
_FILE_RE = re.compile(r'^(\d{6})_(\d{2})_(\d{2})_(\d+)\.png$')


class VolumeKey(NamedTuple):
    patient: int
    study: int
    series: int
    start: int  # absolute slice index, inclusive
    end: int  # absolute slice index, inclusive

    @property
    def series_name(self) -> str:
        return series_name(self.patient, self.study, self.series)

    def __str__(self) -> str:
        return volume_key(self.patient, self.study, self.series, self.start, self.end)


def series_name(patient: int, study: int, series: int) -> str:
    """``PPPPPP_SS_RR``: the folder of a series under ``Images_png/``."""
    return f'{int(patient):06d}_{int(study):02d}_{int(series):02d}'


def volume_key(patient: int, study: int, series: int, start: int, end: int) -> str:
    """``PPPPPP_SS_RR_SSS-EEE`` (inclusive absolute slice range), as in the LH releases."""
    return f'{series_name(patient, study, series)}_{int(start):03d}-{int(end):03d}'


def parse_volume_key(key: str) -> VolumeKey:
    """Parse a sub-volume key; a trailing ``.annot`` (the ``Revised-*.pkl`` files) is accepted."""
    m = _VOLUME_RE.match(key)
    if m is None:
        raise ValueError(f'not a DeepLesion sub-volume key: {key!r} '
                         '(expected PPPPPP_SS_RR_SSS-EEE, e.g. 001344_01_01_012-024)')
    patient, study, series, start, end = (int(g) for g in m.groups())
    if end < start:
        raise ValueError(f'sub-volume key {key!r} ends before it starts')
    return VolumeKey(patient, study, series, start, end)


def slice_file_name(series: str, slice_index: int) -> str:
    """Path of a slice relative to ``Images_png/``: ``PPPPPP_SS_RR/KKK.png``."""
    return f'{series}/{int(slice_index):03d}.png'


def parse_dl_file_name(file_name: str):
    """``'000089_01_01_037.png'`` -> ``('000089_01_01', 37)``."""
    m = _FILE_RE.match(file_name)
    if m is None:
        raise ValueError(f'not a DeepLesion File_name: {file_name!r} '
                         '(expected PPPPPP_SS_RR_KKK.png)')
    return series_name(*(int(g) for g in m.groups()[:3])), int(m.group(4))


def normalize_key(key) -> str:
    """Volume key as a string without the ``.annot`` suffix of the ``Revised-*`` files."""
    key = str(key)
    return key[:-len('.annot')] if key.endswith('.annot') else key
