"""DeepLesion's 16-bit PNG slices: the HU offset, raw <-> HU, the PNG decoder and encoders.

DeepLesion stores every CT slice as a single-channel 16-bit PNG whose raw value is
``HU + PNG_HU_OFFSET`` (32768), so ``HU = raw - 32768``.  This module is the one place that
knows it: the loaders decode with :func:`read_uint16_png` and :func:`raw_to_hu`; the writers of
DeepLesion-format data encode with one of two HU encodings:

- :func:`hu_to_png_clipped` (synthetic generator): float HU rounded half to even and clipped to
  ``PNG_CLIP_HU`` = [-1024, 3071] HU, the 12-bit CT range DeepLesion's images span.
- :func:`hu_to_png_lossless` (real-CT fixture): integer HU stored exactly; every int16 value
  round-trips, so ``raw - 32768`` equals the source voxels bit for bit.

Both write the same PNG bytes for the same raw values (:func:`encode_uint16_png`).
"""
import os.path as osp
from typing import Optional

import cv2
import numpy as np
from mmengine import fileio

PNG_HU_OFFSET = 32768  # raw 16-bit PNG value = HU + PNG_HU_OFFSET
PNG_CLIP_HU = (-1024, 3071)  # HU range of hu_to_png_clipped (inclusive)

# Noisy 16-bit CT barely compresses: Huffman-only deflate after the SUB filter is about 2.5x
# faster than the default and gives smaller files (OpenCV >= 4.10 knows the filter flag).
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
               cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]
if hasattr(cv2, 'IMWRITE_PNG_FILTER'):
    _PNG_PARAMS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]


def raw_to_hu(raw_uint16: np.ndarray) -> np.ndarray:
    """DeepLesion 16-bit PNG values -> Hounsfield units (``HU = raw - 32768``), float32.

    Args:
        raw_uint16: array of dtype uint16, any shape.

    Raises:
        TypeError: the array is not uint16 (an 8-bit PNG read loses the HU scale silently).
    """
    raw = np.asarray(raw_uint16)
    if raw.dtype != np.uint16:
        raise TypeError(f'raw_to_hu expects the uint16 values of a 16-bit DeepLesion PNG, '
                        f'got dtype {raw.dtype}')
    hu = raw.astype(np.float32)
    hu -= np.float32(PNG_HU_OFFSET)  # in place: one array, the values of hu - offset
    return hu


def hu_to_raw(hu: np.ndarray) -> np.ndarray:
    """Integer HU -> DeepLesion raw PNG values (``raw = HU + 32768``), uint16, exactly.

    Args:
        hu: integer array in HU, any shape, values within int16 ([-32768, 32767] HU).

    Raises:
        ValueError: not an integer array, or a value outside int16 (no 16-bit raw value holds it).
    """
    arr = np.asarray(hu)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f'expected integer HU, got dtype {arr.dtype}')
    if arr.size and (arr.min() < -PNG_HU_OFFSET or arr.max() > PNG_HU_OFFSET - 1):
        raise ValueError('HU outside the int16 range cannot be stored as DeepLesion PNG')
    return (arr.astype(np.int32) + PNG_HU_OFFSET).astype(np.uint16)


def encode_uint16_png(raw: np.ndarray) -> bytes:
    """Lossless PNG bytes of a 2D uint16 image (DeepLesion raw values, HU + 32768)."""
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise ValueError(f'expected a 2D uint16 image, got {raw.dtype} {raw.shape}')
    ok, buf = cv2.imencode('.png', raw, _PNG_PARAMS)
    if not ok:
        raise RuntimeError('cv2.imencode failed to encode a 16-bit PNG')
    return buf.tobytes()


def hu_to_png_clipped(hu: np.ndarray) -> bytes:
    """16-bit PNG bytes of a 2D HU image: raw = round(clip(HU, -1024, 3071)) + 32768.

    Rounding is half to even (``np.rint``); the synthetic generator's encoding.
    """
    lo, hi = PNG_CLIP_HU
    raw = (np.rint(np.clip(hu, lo, hi)).astype(np.int32) + PNG_HU_OFFSET).astype(np.uint16)
    return encode_uint16_png(raw)


def hu_to_png_lossless(hu2d: np.ndarray) -> bytes:
    """Lossless 16-bit PNG of a 2D integer HU slice: raw = HU + 32768 (no clipping).

    Raises:
        ValueError: not a 2D integer array, or HU outside int16.
    """
    arr = np.asarray(hu2d)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f'expected a 2D integer HU slice, got {arr.dtype} {arr.shape}')
    return encode_uint16_png(hu_to_raw(arr))


def decode_uint16_png(content: bytes, path: str) -> np.ndarray:
    """Decode PNG bytes to a 2D uint16 array; ``path`` is only used in error messages.

    Raises:
        ValueError: the bytes are not an image, not single-channel, or not 16-bit.
    """
    image = cv2.imdecode(np.frombuffer(content, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    return _check_uint16(image, path)


def read_uint16_png(path: str, backend_args: Optional[dict] = None) -> np.ndarray:
    """Read one DeepLesion slice as a 2D uint16 array (raw values, ``HU = raw - 32768``).

    Local files go through ``cv2.imread(path, cv2.IMREAD_UNCHANGED)``; other backends
    (``backend_args``, as in mmengine.fileio) are fetched as bytes and decoded the same way.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a single-channel 16-bit PNG (an 8-bit read would silently lose the HU
            scale).
    """
    if backend_args is None and '://' not in str(path):
        if not osp.isfile(path):
            raise FileNotFoundError(f'CT slice not found: {path}')
        return _check_uint16(cv2.imread(path, cv2.IMREAD_UNCHANGED), path)
    if not fileio.exists(path, backend_args=backend_args):
        raise FileNotFoundError(f'CT slice not found: {path}')
    return decode_uint16_png(fileio.get(path, backend_args=backend_args), path)


def _check_uint16(image: Optional[np.ndarray], path: str) -> np.ndarray:
    if image is None:
        raise ValueError(f'could not decode {path} as an image')
    if image.ndim != 2:
        raise ValueError(f'{path}: expected a single-channel 16-bit PNG, got an array of shape '
                         f'{image.shape}')
    if image.dtype != np.uint16:
        raise ValueError(f'{path}: expected a 16-bit PNG (uint16, HU = value - 32768), got dtype '
                         f'{image.dtype}; DeepLesion slices must not be converted to 8 bits')
    return image
