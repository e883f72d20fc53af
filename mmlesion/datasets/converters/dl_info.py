"""Parse and validate DeepLesion's ``DL_info.csv`` into typed rows.

Every field of every row is checked (count of numbers, numeric parse, ranges, cross-field
consistency).  A malformed row raises :class:`DLInfoError` naming the CSV file, the 1-based data
row, the physical line, the field and what was expected, e.g.::

    DL_info.csv row 17 (line 18), field Bounding_boxes: expected 4 numbers, got 3: '1, 2, 3'

Coordinate frames: :class:`DLInfoRow` keeps the CSV's values unchanged, i.e. x, y **1-based**
(DeepLesion's frame) and absolute slice indices.  The ``*_0based`` properties subtract 1 from x and
y, which is the frame used everywhere else in mmlesion.
"""
import csv
import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import List, Optional, Tuple, Union

from mmlesion.structures.volume_key import parse_dl_file_name, series_name, volume_key

DL_INFO_HEADER = (
    'File_name', 'Patient_index', 'Study_index', 'Series_ID', 'Key_slice_index',
    'Measurement_coordinates', 'Bounding_boxes', 'Lesion_diameters_Pixel_',
    'Normalized_lesion_location', 'Coarse_lesion_type', 'Possibly_noisy', 'Slice_range',
    'Spacing_mm_px_', 'Image_size', 'DICOM_windows', 'Patient_gender', 'Patient_age',
    'Train_Val_Test')

SPLIT_NAMES = {1: 'train', 2: 'val', 3: 'test'}
LESION_TYPES = (-1, 1, 2, 3, 4, 5, 6, 7, 8)
# Bounding_boxes are the RECIST extent padded by 5 px on every side, so a lesion near the border
# yields a box that crosses it (the released RECIST-Box pickles reach x2 = 516.3 on 512 px images).
# Boxes may therefore extend this far past the image; anything further is malformed.
BOX_BORDER_TOLERANCE_PX = 5.0
_ROUND_DIGITS = 9  # removes float noise of ``v - 1`` (~1e-13) while keeping every CSV digit

PathLike = Union[str, os.PathLike]


class DLInfoError(ValueError):
    """A malformed ``DL_info.csv``: bad header, or a row with a field that fails validation.

    Attributes:
        path: the CSV file.
        row: 1-based data-row number (header = row 0), or None for header errors.
        line: 1-based physical line number in the file, or None.
        field: the CSV column at fault, or None.
        reason: what was expected and what was found.
    """

    def __init__(self, path: str, row: Optional[int], line: Optional[int],
                 field_name: Optional[str], reason: str):
        self.path = path
        self.row = row
        self.line = line
        self.field = field_name
        self.reason = reason
        where = os.path.basename(path)
        if row is not None:
            where += f' row {row} (line {line})'
        elif line is not None:
            where += f' line {line}'
        if field_name is not None:
            where += f', field {field_name}'
        super().__init__(f'{where}: {reason}')


class _FieldError(ValueError):
    """Raised inside row parsing; turned into a :class:`DLInfoError` with the row position."""

    def __init__(self, field_name: str, reason: str):
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True)
class DLInfoRow:
    """One lesion row of ``DL_info.csv``, validated; x, y in the CSV's **1-based** frame.

    Slice indices (``key_slice_index``, ``slice_range``) are DeepLesion's absolute indices.
    ``spacing_mm`` is (x, y, z) in mm with z the slice interval, which may be 0 or NaN in the
    real data.  ``image_size`` is (width, height) in px.  ``dicom_window`` is (low, high) in HU.
    """
    csv_row: int  # 1-based data-row number (header = row 0)
    line: int  # 1-based physical line number
    file_name: str
    patient_index: int
    study_index: int
    series_id: int
    key_slice_index: int
    measurement_coordinates: Tuple[float, ...]  # 8: long axis x1,y1,x2,y2, short axis x1,y1,x2,y2
    bounding_box: Tuple[float, float, float, float]  # x1, y1, x2, y2
    lesion_diameters_px: Tuple[float, float]  # long, short
    normalized_location: Tuple[float, float, float]
    lesion_type: int  # 1..8, -1 unknown
    noisy: bool
    slice_range: Tuple[int, int]  # first, last (inclusive)
    spacing_mm: Tuple[float, float, float]  # x, y, z (z = slice interval; may be 0 or NaN)
    image_size: Tuple[int, int]  # width, height
    dicom_window: Tuple[float, float]  # low, high HU
    gender: Optional[str]  # 'F', 'M' or None when empty
    age: Optional[int]  # years, None when empty/NaN
    split: str  # 'train' | 'val' | 'test'
    warnings: Tuple[str, ...] = field(default=(), compare=False)

    @cached_property
    def series(self) -> str:
        """``PPPPPP_SS_RR`` folder name under ``Images_png/``."""
        return series_name(self.patient_index, self.study_index, self.series_id)

    @cached_property
    def volume_id(self) -> str:
        """Sub-volume key ``PPPPPP_SS_RR_SSS-EEE`` from ``Slice_range``."""
        return volume_key(self.patient_index, self.study_index, self.series_id,
                          *self.slice_range)

    @property
    def slice_interval_mm(self) -> Optional[float]:
        """Slice interval in mm; None where the CSV has NaN, 0.0 kept as 0.0."""
        z = self.spacing_mm[2]
        return None if math.isnan(z) else z

    @property
    def bbox_xyxy_0based(self) -> Tuple[float, float, float, float]:
        """``Bounding_boxes`` moved to the 0-based frame (x1, y1, x2, y2)."""
        return tuple(_minus_one(v) for v in self.bounding_box)

    @property
    def recist_0based(self) -> Tuple[float, ...]:
        """``Measurement_coordinates`` moved to the 0-based frame (8 numbers)."""
        return tuple(_minus_one(v) for v in self.measurement_coordinates)


def _minus_one(v: float) -> float:
    return round(v - 1.0, _ROUND_DIGITS)


@dataclass
class DLInfoTable:
    """Result of :func:`read_dl_info`.

    Attributes:
        path: the CSV file.
        rows: valid rows in file order.
        skipped: ``(csv_row, line, reason)`` for each row left out (only with ``skip_invalid``).
        num_rows_read: data rows read (valid + skipped; blank lines are not rows).
    """
    path: str
    rows: List[DLInfoRow]
    skipped: List[Tuple[int, int, str]]
    num_rows_read: int


def _numbers(field_name: str, text: str, count: int) -> Tuple[float, ...]:
    parts = [p.strip() for p in text.split(',')]
    if text.strip() == '':
        parts = []
    if len(parts) != count:
        raise _FieldError(field_name,
                          f'expected {count} numbers, got {len(parts)}: {text!r}')
    values = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise _FieldError(field_name, f'expected {count} numbers, {p!r} is not a number: '
                              f'{text!r}') from None
        if math.isinf(v) or math.isnan(v):
            raise _FieldError(field_name, f'expected {count} finite numbers, got {text!r}')
        values.append(v)
    return tuple(values)


def _integer(field_name: str, text: str, lo: Optional[int] = None) -> int:
    try:
        v = float(text.strip())
    except ValueError:
        raise _FieldError(field_name, f'expected an integer, got {text!r}') from None
    if not math.isfinite(v) or v != int(v):
        raise _FieldError(field_name, f'expected an integer, got {text!r}')
    v = int(v)
    if lo is not None and v < lo:
        raise _FieldError(field_name, f'expected an integer >= {lo}, got {text!r}')
    return v


def _int_tuple(field_name: str, text: str, count: int) -> Tuple[int, ...]:
    values = _numbers(field_name, text, count)
    if any(v != int(v) for v in values):
        raise _FieldError(field_name, f'expected {count} integers, got {text!r}')
    return tuple(int(v) for v in values)


def _spacing(text: str) -> Tuple[float, float, float]:
    name = 'Spacing_mm_px_'
    parts = [p.strip() for p in text.split(',')]
    if len(parts) != 3:
        raise _FieldError(name, f'expected 3 numbers (x, y, z mm), got {len(parts)}: {text!r}')
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise _FieldError(name, f'expected numeric x, y spacing, got {text!r}') from None
    if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
        raise _FieldError(name, f'expected positive finite x, y spacing (mm/px), got {text!r}')
    # The slice interval is NaN (or empty) for some real rows: kept as NaN, loaders repeat the key
    # slice.
    if parts[2] == '' or parts[2].lower() == 'nan':
        z = float('nan')
    else:
        try:
            z = float(parts[2])
        except ValueError:
            raise _FieldError(name, f'expected a numeric (or NaN) slice interval, got {text!r}') \
                from None
        if math.isinf(z) or z < 0:
            raise _FieldError(name, f'expected a slice interval >= 0 mm (or NaN), got {text!r}')
    return x, y, z


def _check_in_image(field_name: str, coords: Tuple[float, ...], width: int, height: int,
                    tolerance: float, text: str) -> None:
    # 1-based pixel centres run 1..W; continuous extent [0.5, W + 0.5] plus tolerance.
    lo, hi_x, hi_y = 0.5 - tolerance, width + 0.5 + tolerance, height + 0.5 + tolerance
    xs, ys = coords[0::2], coords[1::2]
    if min(xs) < lo or max(xs) > hi_x or min(ys) < lo or max(ys) > hi_y:
        extra = f' (allowing {tolerance:g} px of padding past the border)' if tolerance else ''
        raise _FieldError(
            field_name, f'expected coordinates inside the {width}x{height} image (1-based){extra}, '
            f'got {text!r}')


def parse_row(values: List[str], csv_row: int, line: int,
              path: PathLike = 'DL_info.csv') -> DLInfoRow:
    """Validate one CSV record (18 strings, header order) into a :class:`DLInfoRow`.

    Raises:
        DLInfoError: naming ``path``, the row, the line and the field at fault.
    """
    path = os.fspath(path)
    if len(values) != len(DL_INFO_HEADER):
        raise DLInfoError(path, csv_row, line, None,
                          f'expected {len(DL_INFO_HEADER)} comma-separated fields, got '
                          f'{len(values)} (are multi-valued fields quoted?)')
    try:
        return _parse_fields(dict(zip(DL_INFO_HEADER, values)), csv_row, line)
    except _FieldError as e:
        raise DLInfoError(path, csv_row, line, e.field, e.reason) from None


def _parse_fields(f: dict, csv_row: int, line: int) -> DLInfoRow:
    warnings = []
    patient = _integer('Patient_index', f['Patient_index'], lo=0)
    study = _integer('Study_index', f['Study_index'], lo=0)
    series = _integer('Series_ID', f['Series_ID'], lo=0)
    key = _integer('Key_slice_index', f['Key_slice_index'], lo=0)

    file_name = f['File_name'].strip()
    try:
        fn_series, fn_key = parse_dl_file_name(file_name)
    except ValueError as e:
        raise _FieldError('File_name', str(e)) from None
    if fn_series != series_name(patient, study, series) or fn_key != key:
        raise _FieldError(
            'File_name', f'expected {series_name(patient, study, series)}_{key:03d}.png '
            f'(Patient_index, Study_index, Series_ID, Key_slice_index), got {file_name!r}')

    first, last = _int_tuple('Slice_range', f['Slice_range'], 2)
    if first < 0 or not first <= key <= last:
        raise _FieldError('Slice_range', f'expected first <= Key_slice_index ({key}) <= last '
                          f'with first >= 0, got {f["Slice_range"]!r}')

    width, height = _int_tuple('Image_size', f['Image_size'], 2)
    if width <= 0 or height <= 0:
        raise _FieldError('Image_size', f'expected 2 positive integers, got {f["Image_size"]!r}')

    recist = _numbers('Measurement_coordinates', f['Measurement_coordinates'], 8)
    _check_in_image('Measurement_coordinates', recist, width, height, 0.0,
                    f['Measurement_coordinates'])

    box = _numbers('Bounding_boxes', f['Bounding_boxes'], 4)
    if not (box[0] < box[2] and box[1] < box[3]):
        raise _FieldError('Bounding_boxes', f'expected x1 < x2 and y1 < y2, got '
                          f'{f["Bounding_boxes"]!r}')
    _check_in_image('Bounding_boxes', box, width, height, BOX_BORDER_TOLERANCE_PX,
                    f['Bounding_boxes'])
    if box[0] < 0.5 or box[1] < 0.5 or box[2] > width + 0.5 or box[3] > height + 0.5:
        warnings.append('box_crosses_border')

    diameters = _numbers('Lesion_diameters_Pixel_', f['Lesion_diameters_Pixel_'], 2)
    if min(diameters) < 0:
        raise _FieldError('Lesion_diameters_Pixel_', 'expected 2 non-negative lengths (px), got '
                          f'{f["Lesion_diameters_Pixel_"]!r}')
    location = _numbers('Normalized_lesion_location', f['Normalized_lesion_location'], 3)

    lesion_type = _integer('Coarse_lesion_type', f['Coarse_lesion_type'])
    if lesion_type not in LESION_TYPES:
        raise _FieldError('Coarse_lesion_type', f'expected -1 or 1..8, got '
                          f'{f["Coarse_lesion_type"]!r}')
    noisy = _integer('Possibly_noisy', f['Possibly_noisy'])
    if noisy not in (0, 1):
        raise _FieldError('Possibly_noisy', f'expected 0 or 1, got {f["Possibly_noisy"]!r}')

    spacing = _spacing(f['Spacing_mm_px_'])
    window = _numbers('DICOM_windows', f['DICOM_windows'], 2)
    if not window[0] < window[1]:
        raise _FieldError('DICOM_windows', f'expected low < high (HU), got '
                          f'{f["DICOM_windows"]!r}')

    gender = f['Patient_gender'].strip().upper() or None
    if gender not in (None, 'F', 'M'):
        raise _FieldError('Patient_gender', f'expected F, M or empty, got '
                          f'{f["Patient_gender"]!r}')
    age_text = f['Patient_age'].strip()
    if age_text == '' or age_text.lower() == 'nan':
        age = None
    else:
        age = _integer('Patient_age', age_text, lo=0)
        if age > 130:
            raise _FieldError('Patient_age', f'expected an age in years 0..130, got {age_text!r}')

    split = _integer('Train_Val_Test', f['Train_Val_Test'])
    if split not in SPLIT_NAMES:
        raise _FieldError('Train_Val_Test', f'expected 1 (train), 2 (val) or 3 (test), got '
                          f'{f["Train_Val_Test"]!r}')

    return DLInfoRow(
        csv_row=csv_row, line=line, file_name=file_name, patient_index=patient,
        study_index=study, series_id=series, key_slice_index=key,
        measurement_coordinates=recist, bounding_box=box, lesion_diameters_px=diameters,
        normalized_location=location, lesion_type=lesion_type, noisy=bool(noisy),
        slice_range=(first, last), spacing_mm=spacing, image_size=(width, height),
        dicom_window=window, gender=gender, age=age, split=SPLIT_NAMES[split],
        warnings=tuple(warnings))


def check_header(header: List[str], path: PathLike = 'DL_info.csv') -> None:
    """Raise :class:`DLInfoError` unless ``header`` is exactly DeepLesion's header."""
    header = [h.strip() for h in header]
    if tuple(header) != DL_INFO_HEADER:
        diffs = [f'column {i + 1}: expected {exp!r}, got {got!r}'
                 for i, (exp, got) in enumerate(zip(DL_INFO_HEADER, header)) if exp != got]
        if len(header) != len(DL_INFO_HEADER):
            diffs.insert(0, f'expected {len(DL_INFO_HEADER)} columns, got {len(header)}')
        raise DLInfoError(os.fspath(path), None, 1, None,
                          'not a DeepLesion DL_info.csv header (' + '; '.join(diffs[:3])
                          + '); expected: ' + ','.join(DL_INFO_HEADER))


def read_dl_info(path: PathLike, skip_invalid: bool = False) -> DLInfoTable:
    """Read and validate a whole ``DL_info.csv``.

    Args:
        path: the CSV file.
        skip_invalid: leave malformed rows out and list them in ``DLInfoTable.skipped`` instead
            of raising.  A bad header always raises.

    Returns:
        :class:`DLInfoTable` with rows in file order, x/y still 1-based.

    Raises:
        DLInfoError: bad header, or (without ``skip_invalid``) the first malformed row.
        FileNotFoundError: ``path`` does not exist.
    """
    path = os.fspath(path)
    rows, skipped = [], []
    n_read = 0
    # utf-8-sig: a CSV re-saved by a spreadsheet starts with a BOM that would corrupt 'File_name'.
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.reader(f, skipinitialspace=False)
        try:
            header = next(reader)
        except StopIteration:
            raise DLInfoError(path, None, 1, None, 'the file is empty; expected the header '
                              + ','.join(DL_INFO_HEADER)) from None
        check_header(header, path)
        for values in reader:
            if not values or all(v.strip() == '' for v in values):
                continue
            n_read += 1
            line = reader.line_num
            try:
                rows.append(parse_row(values, n_read, line, path))
            except DLInfoError as e:
                if not skip_invalid:
                    raise
                skipped.append((n_read, line, str(e)))
    return DLInfoTable(path=path, rows=rows, skipped=skipped, num_rows_read=n_read)
