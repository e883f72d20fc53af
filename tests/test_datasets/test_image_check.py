"""tools/convert_deeplesion.py --check-images decodes the key slices and the window neighbours
training will read, and names the unreadable ones before any training."""
import json
import os
import shutil

import cv2
import numpy as np

from mmlesion.datasets.converters.deeplesion import main as convert_main
from mmlesion.datasets.image_check import check_images, window_slice_files


def test_window_files_follow_the_interpolation_plan():
    # key 20 of 10-30 at 5 mm: channels at +-2, 4, 6, 8 mm = +-0.4 .. 1.6 slices -> 18..22;
    # slice 21 missing: its channels step back to the key
    im = dict(file_name='000001_01_01/020.png', slice_index=20, slice_range=[10, 30],
              slice_interval=5.0, missing_slices=[21])
    files = window_slice_files([im], '/img')
    assert [os.path.basename(f) for f in files] == ['018.png', '019.png', '020.png', '022.png']
    assert all(f.startswith('/img/000001_01_01/') for f in files)


def test_corrupt_key_slice_and_neighbour_are_named(synthetic_converted, tmp_path, capsys):
    root = synthetic_converted
    with open(root / 'annotations' / 'train.json') as f:
        images = json.load(f)['images']
    im = images[0]
    series = os.path.dirname(im['file_name'])
    key = root / 'Images_png' / im['file_name']
    neighbour = root / 'Images_png' / series / f'{im["slice_index"] + 1:03d}.png'
    data = tmp_path / 'data'
    os.makedirs(data)
    os.symlink(root / 'DL_info.csv', data / 'DL_info.csv')
    # a copy of the images with the key slice truncated and its upper neighbour 8-bit
    shutil.copytree(root / 'Images_png', data / 'Images_png')
    with open(key, 'rb') as f:
        head = f.read(200)
    (data / 'Images_png' / im['file_name']).write_bytes(head)
    cv2.imwrite(str(data / 'Images_png' / series / neighbour.name), np.zeros((8, 8), np.uint8))

    ok = check_images(images, str(root / 'Images_png'), workers=1, progress=False)
    assert ok['unreadable'] == [] and ok['checked'] >= len(images)
    bad = check_images(images, str(data / 'Images_png'), workers=2, progress=False)
    names = [p for p, _ in bad['unreadable']]
    assert names == sorted([str(data / 'Images_png' / im['file_name']),
                            str(data / 'Images_png' / series / neighbour.name)])
    assert any('16-bit' in r for _, r in bad['unreadable'])

    status = convert_main(['--data-root', str(data), '--out-dir', str(tmp_path / 'ann'),
                           '--check-images', '--workers', '2'])
    out, err = capsys.readouterr()
    assert status == 1 and '2 unreadable slice PNG(s)' in err
    assert f'unreadable: {names[0]}' in out
    with open(tmp_path / 'ann' / 'summary.json') as f:
        assert [p for p, _ in json.load(f)['unreadable_images']] == names
