"""Converters into mmlesion's COCO-style JSON (``docs/data_format.md``).

- :mod:`.dl_info`: parse and validate DeepLesion's ``DL_info.csv`` (1-based x/y) into typed rows.
- :mod:`.deeplesion`: ``DL_info.csv`` + ``Images_png/`` listing -> ``{train,val,test}.json``.
- :mod:`.annotation_release`: Lesion Harvester / LENS pickles -> complete-annotation JSON.
"""
from .annotation_release import (
    AnnotationFormatError,
    detect_format,
    import_release,
    load_lens,
    load_lh_2d,
    load_lh_3d,
    load_series_info,
    to_coco,
)
from .deeplesion import build_coco, convert_deeplesion, scan_series_folders
from .dl_info import DL_INFO_HEADER, DLInfoError, DLInfoRow, DLInfoTable, parse_row, read_dl_info

__all__ = [
    'DL_INFO_HEADER', 'DLInfoError', 'DLInfoRow', 'DLInfoTable', 'parse_row', 'read_dl_info',
    'build_coco', 'convert_deeplesion', 'scan_series_folders', 'AnnotationFormatError',
    'detect_format', 'import_release', 'load_lh_2d', 'load_lh_3d', 'load_lens',
    'load_series_info', 'to_coco'
]
