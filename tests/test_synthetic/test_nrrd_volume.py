"""Reading CT NRRD files into image convention, on small hand-made volumes."""
import numpy as np
import pytest

from mmlesion.synthetic.nrrd_volume import read_nrrd_volume

nrrd = pytest.importorskip('nrrd')


def _write_nrrd(path, data, spacing=(0.5, 0.5, 5.0), signs=(1, 1, 1),
                space='left-posterior-superior'):
    header = {'space': space, 'space directions': np.diag(np.array(spacing) * np.array(signs)),
              'space origin': np.zeros(3), 'kinds': ['domain'] * 3, 'encoding': 'gzip'}
    nrrd.write(str(path), data, header)
    return str(path)


def test_read_nrrd_transposes_xyz_to_rows_y_cols_x(tmp_path):
    x, y, z = np.meshgrid(np.arange(4), np.arange(3), np.arange(2), indexing='ij')
    data = (100 * x + 10 * y + z).astype(np.int16)  # (x, y, z) = (4, 3, 2)
    label = np.zeros_like(data, dtype=np.uint8)
    label[1, 2, 1] = 1
    vol = read_nrrd_volume(_write_nrrd(tmp_path / 'a_image.nrrd', data),
                           _write_nrrd(tmp_path / 'a_label.nrrd', label))
    assert vol.name == 'a' and vol.hu.shape == (2, 3, 4) and vol.hu.dtype == np.int16
    assert vol.spacing == (0.5, 0.5, 5.0) and vol.image_size == (4, 3)
    assert vol.hu[1, 2, 3] == 100 * 3 + 10 * 2 + 1  # [z, row = y, column = x]
    assert np.argwhere(vol.label).tolist() == [[1, 2, 1]]
    # A negative direction is flipped so that columns still run toward +x (patient left).
    flipped = read_nrrd_volume(_write_nrrd(tmp_path / 'b_image.nrrd', data, signs=(-1, 1, 1)))
    assert flipped.hu[0, 0, 0] == 300 and flipped.spacing[0] == 0.5


def test_read_nrrd_errors(tmp_path):
    data = np.zeros((4, 3, 2), np.int16)
    img = _write_nrrd(tmp_path / 'c_image.nrrd', data)
    with pytest.raises(ValueError, match='differs from the image'):
        read_nrrd_volume(img, _write_nrrd(tmp_path / 'c_label.nrrd', np.zeros((4, 3, 3), np.uint8)))
    with pytest.raises(ValueError, match='integer HU'):
        read_nrrd_volume(_write_nrrd(tmp_path / 'd.nrrd', data.astype(np.float32)))
    with pytest.raises(ValueError, match='not supported'):
        read_nrrd_volume(_write_nrrd(tmp_path / 'e.nrrd', data, space='right-anterior-superior'))
    with pytest.raises(FileNotFoundError):
        read_nrrd_volume(str(tmp_path / 'missing.nrrd'))
