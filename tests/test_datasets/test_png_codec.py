"""DeepLesion's 16-bit PNG encoding: raw = HU + 32768, the decoder and the two HU encoders."""
import cv2
import numpy as np
import pytest

from mmlesion.datasets.png_codec import (
    PNG_CLIP_HU,
    PNG_HU_OFFSET,
    decode_uint16_png,
    encode_uint16_png,
    hu_to_png_clipped,
    hu_to_png_lossless,
    hu_to_raw,
    raw_to_hu,
    read_uint16_png,
)


def _decode(data):
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    return raw


def test_raw_to_hu_subtracts_32768():
    assert PNG_HU_OFFSET == 32768
    raw = np.array([[0, 32000], [32768, 65535]], dtype=np.uint16)
    hu = raw_to_hu(raw)
    assert hu.dtype == np.float32
    np.testing.assert_array_equal(hu, [[-32768, -768], [0, 32767]])


def test_raw_to_hu_rejects_8bit():
    with pytest.raises(TypeError, match='uint16'):
        raw_to_hu(np.zeros((2, 2), dtype=np.uint8))


def test_hu_to_raw_is_exact_and_checked():
    hu = np.array([-32768, -1024, 0, 32767], dtype=np.int32)
    raw = hu_to_raw(hu)
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw_to_hu(raw), hu)
    with pytest.raises(ValueError, match='int16'):
        hu_to_raw(np.array([32768]))
    with pytest.raises(ValueError, match='integer'):
        hu_to_raw(np.array([1.5]))


def test_hu_to_png_clipped_offset_rounding_and_clipping():
    hu = np.array([[-2000.0, -1000.4, -0.6, 0.0], [40.5, 3071.0, 5000.0, -1024.0]],
                  dtype=np.float32)
    raw = _decode(hu_to_png_clipped(hu))
    # Clipped to [-1024, 3071] HU, rounded half to even, + 32768.
    assert PNG_CLIP_HU == (-1024, 3071)
    np.testing.assert_array_equal(raw, [[31744, 31768, 32767, 32768], [32808, 35839, 35839, 31744]])


def test_hu_to_png_lossless_stores_every_int16_exactly():
    hu = np.array([[-32768, -1024, -1], [0, 3071, 32767]], dtype=np.int16)
    raw = _decode(hu_to_png_lossless(hu))
    np.testing.assert_array_equal(raw.astype(np.int32) - 32768, hu)
    with pytest.raises(ValueError, match='2D integer'):
        hu_to_png_lossless(hu.astype(np.float32))
    with pytest.raises(ValueError, match='int16'):
        hu_to_png_lossless(np.array([[40000]], dtype=np.int32))


def test_both_encodings_write_the_same_bytes_for_the_same_raw_values():
    hu = np.array([[-1024, -1000, 0], [40, 1000, 3071]], dtype=np.int16)
    assert hu_to_png_clipped(hu.astype(np.float32)) == hu_to_png_lossless(hu) == \
        encode_uint16_png(hu_to_raw(hu))
    with pytest.raises(ValueError, match='2D uint16'):
        encode_uint16_png(np.zeros((2, 2), np.int16))


def test_read_and_decode_roundtrip(tmp_path):
    raw = np.full((8, 6), 32768 + 30, dtype=np.uint16)
    raw[0, 0] = 32768 - 1024  # a -1024 HU pixel, like air
    path = str(tmp_path / '003.png')
    with open(path, 'wb') as f:
        f.write(encode_uint16_png(raw))
    got = read_uint16_png(path)
    assert got.dtype == np.uint16 and got.shape == (8, 6)
    np.testing.assert_array_equal(got, raw)
    with open(path, 'rb') as f:
        np.testing.assert_array_equal(decode_uint16_png(f.read(), path), raw)


def test_read_8bit_png_is_a_clear_error(tmp_path):
    path = str(tmp_path / '001.png')
    cv2.imwrite(path, np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match=r'001\.png.*16-bit'):
        read_uint16_png(path)
    with pytest.raises(ValueError, match='could not decode'):
        decode_uint16_png(b'not a png', 'x.png')


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='002.png'):
        read_uint16_png(str(tmp_path / '002.png'))
