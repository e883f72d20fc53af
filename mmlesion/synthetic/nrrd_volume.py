"""The real chest CTs: NRRD volumes (HU + lesion mask) read into mmlesion's image convention.

The two real CTs available here (``real_ct/lung1_*``, ``real_ct/lung2_*``: the pyradiomics 3.0.1
test data, BSD-3-Clause) are gzip NRRD files, int16 HU, one binary lesion mask each; where they
are found is :func:`mmlesion.utils.locations.find_real_ct_dir`'s business.

Frames and conventions:

- **Arrays.** pynrrd returns ``(x, y, z)`` arrays; :func:`read_nrrd_volume` transposes them to
  ``(z, y, x)`` = (slice, row, column), the image convention of every other array in mmlesion.
  With the ``left-posterior-superior`` space of these files, rows run anterior -> posterior and
  columns patient right -> left (the radiological display), and z runs inferior -> superior.
  An axis whose NRRD direction is negative is flipped so that this holds for any diagonal file.
- **Slice indices.** NRRD z index ``k`` (0-based) is DeepLesion slice index ``k + 1``
  (1-based like DeepLesion's file names, :func:`nrrd_z_to_slice`).
- **Body level.** DL_info's normalised z of a slice (0 = head, 1 = feet, per 1000 mm) is
  approximate (:func:`body_level`): both volumes end in the lower neck.
"""
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from mmlesion.utils.locations import find_real_ct_dir

REAL_CT_NAMES = ('lung1', 'lung2')
# DeepLesion-style ids of the real volumes: patient, study, series.  Patient indices above
# DeepLesion's 4,427 so they can never be mistaken for a real DeepLesion patient.
REAL_CT_IDS = {'lung1': (9001, 1, 1), 'lung2': (9002, 1, 1)}
SLICE_BASE = 1  # DeepLesion slice index of NRRD z = 0
# Body level (0 = head, 1 = feet, per 1000 mm; DL_info's normalised z) of the top slice: both
# volumes end in the lower neck.
TOP_SLICE_LEVEL = 0.25
BODY_LEVEL_MM = 1000.0


@dataclass
class RealCTVolume:
    """A real CT volume in image convention.

    Attributes:
        name: e.g. ``'lung1'``.
        hu: ``(Z, H, W)`` int16 HU; rows = NRRD y, columns = NRRD x (see the module docstring).
        label: ``(Z, H, W)`` integer mask (0 = background) or None.
        spacing: ``(x, y, z)`` mm: column spacing, row spacing, slice interval.
        origin_mm: NRRD ``space origin`` (x, y, z) mm, of the unflipped file.
        space: NRRD ``space`` string.
        image_path, label_path: the files read.
    """
    name: str
    hu: np.ndarray
    label: Optional[np.ndarray]
    spacing: Tuple[float, float, float]
    origin_mm: Tuple[float, float, float]
    space: str
    image_path: str
    label_path: Optional[str]

    @property
    def num_slices(self) -> int:
        return int(self.hu.shape[0])

    @property
    def image_size(self) -> Tuple[int, int]:
        """(W, H) px."""
        return int(self.hu.shape[2]), int(self.hu.shape[1])


def _read_nrrd(path: str):
    try:
        import nrrd
    except ImportError as e:  # pragma: no cover - pynrrd is a declared dependency
        raise ImportError('reading NRRD volumes needs pynrrd (pip install pynrrd)') from e
    if not os.path.isfile(path):
        raise FileNotFoundError(f'NRRD file not found: {path}')
    try:
        return nrrd.read(path)
    except Exception as e:
        raise ValueError(f'{path}: not a readable NRRD file ({e})') from e


def _axes_and_spacing(header: dict, path: str, shape: Tuple[int, ...]):
    if len(shape) != 3 or int(header.get('dimension', len(shape))) != 3:
        raise ValueError(f'{path}: expected a 3D volume, got shape {shape}')
    dirs = header.get('space directions')
    if dirs is None:
        raise ValueError(f'{path}: no "space directions" field: the voxel spacing is unknown')
    dirs = np.asarray(dirs, dtype=np.float64)
    if dirs.shape != (3, 3) or not np.all(np.isfinite(dirs)):
        raise ValueError(f'{path}: "space directions" must be 3 finite 3-vectors, got {dirs}')
    off = dirs - np.diag(np.diag(dirs))
    if np.any(np.abs(off) > 1e-6 * np.abs(dirs).max()):
        raise ValueError(f'{path}: oblique "space directions" {dirs.tolist()} are not supported '
                         '(expected a diagonal matrix: axial slices on the x-y grid)')
    diag = np.diag(dirs)
    if np.any(diag == 0):
        raise ValueError(f'{path}: zero voxel spacing in "space directions" {diag.tolist()}')
    space = str(header.get('space', ''))
    if space and space not in ('left-posterior-superior', 'LPS'):
        raise ValueError(f'{path}: space {space!r} is not supported (expected '
                         'left-posterior-superior, the DICOM patient frame)')
    return np.abs(diag), diag < 0, space


def _to_image_convention(arr: np.ndarray, flips) -> np.ndarray:
    for axis, flip in enumerate(flips):
        if flip:
            arr = np.flip(arr, axis=axis)
    return np.ascontiguousarray(np.transpose(arr, (2, 1, 0)))


def read_nrrd_volume(image_path: str, label_path: Optional[str] = None,
                     name: Optional[str] = None) -> RealCTVolume:
    """Read a CT NRRD (and its lesion mask) into image convention ``(z, y, x)``.

    Args:
        image_path: integer HU volume (int16, or an integer type whose values fit int16).
        label_path: lesion mask of the same shape and spacing, or None.
        name: defaults to the file name without ``_image.nrrd``.

    Raises:
        ValueError: not 3D, oblique or zero spacing, unsupported space, non-integer or
            out-of-int16 voxels, or a mask whose shape or spacing differs from the image's.
    """
    data, header = _read_nrrd(image_path)
    spacing, flips, space = _axes_and_spacing(header, image_path, data.shape)
    if not np.issubdtype(data.dtype, np.integer):
        raise ValueError(f'{image_path}: expected integer HU voxels, got dtype {data.dtype}')
    if data.dtype != np.int16:
        lo, hi = int(data.min()), int(data.max())
        if lo < -32768 or hi > 32767:
            raise ValueError(f'{image_path}: HU range {lo}..{hi} does not fit int16 '
                             '(DeepLesion PNGs store HU + 32768 in 16 bits)')
        data = data.astype(np.int16)
    hu = _to_image_convention(data, flips)
    label = None
    if label_path is not None:
        ldata, lheader = _read_nrrd(label_path)
        lspacing, lflips, _ = _axes_and_spacing(lheader, label_path, ldata.shape)
        if ldata.shape != data.shape:
            raise ValueError(f'{label_path}: mask shape {ldata.shape} differs from the image '
                             f'{image_path} shape {data.shape}')
        if not np.allclose(lspacing, spacing, rtol=1e-5) or list(lflips) != list(flips):
            raise ValueError(f'{label_path}: mask spacing {lspacing.tolist()} differs from the '
                             f'image spacing {spacing.tolist()}')
        if not np.issubdtype(ldata.dtype, np.integer) or ldata.min() < 0:
            raise ValueError(f'{label_path}: expected a non-negative integer mask, got dtype '
                             f'{ldata.dtype}, min {ldata.min()}')
        label = _to_image_convention(ldata, lflips)
    if name is None:
        base = os.path.basename(image_path)
        name = base[:-len('_image.nrrd')] if base.endswith('_image.nrrd') else base.split('.')[0]
    origin = header.get('space origin')
    origin = tuple(float(v) for v in origin) if origin is not None else (0.0, 0.0, 0.0)
    return RealCTVolume(name=name, hu=hu, label=label,
                        spacing=tuple(float(s) for s in spacing), origin_mm=origin,
                        space=space, image_path=os.fspath(image_path),
                        label_path=None if label_path is None else os.fspath(label_path))


def load_real_ct(real_ct_dir: Optional[str] = None,
                 names: Sequence[str] = REAL_CT_NAMES) -> List[RealCTVolume]:
    """``<name>_image.nrrd`` + ``<name>_label.nrrd`` of each name, from :func:`find_real_ct_dir`."""
    folder = find_real_ct_dir(real_ct_dir)
    return [read_nrrd_volume(os.path.join(folder, f'{n}_image.nrrd'),
                             os.path.join(folder, f'{n}_label.nrrd'), name=n) for n in names]


def nrrd_z_to_slice(z: int) -> int:
    """DeepLesion slice index (1-based) of NRRD z index ``z`` (0-based)."""
    return int(z) + SLICE_BASE


def slice_to_nrrd_z(slice_index: int) -> int:
    return int(slice_index) - SLICE_BASE


def body_level(z: int, num_slices: int, slice_interval_mm: float) -> float:
    """DL_info's normalised z of NRRD slice ``z`` (approximate: the top slice at 0.25)."""
    return TOP_SLICE_LEVEL + (num_slices - 1 - z) * slice_interval_mm / BODY_LEVEL_MM
