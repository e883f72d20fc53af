"""The generator's real-anatomy mode: synthetic lesions and look-alikes in the two real chest CTs
(augmentation, tissue segmentation, patient-level split, placement, truth, CLI)."""
import csv
import filecmp
import json
import os

import cv2
import numpy as np
import pytest
from generated_files import csv_numbers, png_files, read_hu

from mmlesion.cli.make_synthetic import main
from mmlesion.datasets.converters.dl_info import DL_INFO_HEADER
from mmlesion.synthetic import generate_dataset, lesion_mask_from_truth


def test_crop_resample_by_hand():
    from mmlesion.synthetic.real_anatomy import RealAugmentation, crop_resample
    src = (10 * np.arange(4)[:, None] + np.arange(4)[None, :]).astype(np.float32)  # 10 y + x
    aug = RealAugmentation('x', 0, 0, False, -2, 0, 4, 2, 1.0, 0.0, 0.0)
    # columns -2, -1 lie beyond the scan (fill); each output pixel averages 2 x 2 inputs
    np.testing.assert_allclose(crop_resample(src, aug, fill=-1000.0),
                               [[-1000, 5.5], [-1000, 25.5]])
    flipped = RealAugmentation('x', 0, 0, True, 0, 0, 4, 2, 1.0, 0.0, 0.0)
    np.testing.assert_allclose(crop_resample(src, flipped), [[7.5, 5.5], [27.5, 25.5]])
    assert RealAugmentation.from_json(aug.to_json()) == aug


def test_segment_tissues_on_a_drawn_chest():
    from mmlesion.synthetic.real_anatomy import (
        BONE,
        LUNG,
        MEDIASTINUM,
        OUTSIDE,
        WALL,
        segment_tissues,
    )
    yy, xx = np.mgrid[:128, :128]
    sl = np.full((128, 128), -1000, np.int16)
    sl[((xx - 64) / 55.0) ** 2 + ((yy - 64) / 45.0) ** 2 <= 1] = -100  # fat
    sl[((xx - 64) / 50.0) ** 2 + ((yy - 64) / 40.0) ** 2 <= 1] = 40  # muscle, organs
    for cx in (40, 88):
        sl[((xx - cx) / 16.0) ** 2 + ((yy - 60) / 24.0) ** 2 <= 1] = -850  # lungs
    sl[(xx - 40) ** 2 + (yy - 60) ** 2 <= 2] = 40  # a vessel inside the right lung
    sl[(xx - 64) ** 2 + (yy - 95) ** 2 <= 64] = 500  # vertebra
    t = segment_tissues(np.stack([sl] * 8), (3.0, 3.0, 5.0))
    assert t.shape == (8, 64, 64)
    # map pixel u covers source pixels 2u, 2u + 1
    assert t[4, 1, 1] == OUTSIDE
    assert t[4, 30, 20] == LUNG and t[4, 30, 44] == LUNG  # the vessel is filled into the lung
    assert t[4, 47, 32] == BONE
    assert t[4, 30, 32] == MEDIASTINUM  # between the lungs
    assert t[4, 12, 32] == WALL  # under the skin, in front of the chest


REAL_N, REAL_SIZE, REAL_SEED = 8, 192, 5


@pytest.fixture(scope='module')
def real_dataset(tmp_path_factory, real_ct_dir):
    out = str(tmp_path_factory.mktemp('real') / 'a')
    summary = generate_dataset(out, REAL_N, seed=REAL_SEED, image_size=REAL_SIZE,
                               anatomy='real', real_ct_dir=real_ct_dir, workers=2)
    with open(os.path.join(out, 'ground_truth', 'truth.json')) as f:
        truth = json.load(f)
    with open(os.path.join(out, 'DL_info.csv'), newline='') as f:
        rows = list(csv.reader(f))[1:]
    return dict(out=out, summary=summary, truth=truth, rows=rows, real_ct=real_ct_dir)


def test_real_same_seed_same_bytes_any_workers(real_dataset, tmp_path):
    again = str(tmp_path / 'again')
    generate_dataset(again, REAL_N, seed=REAL_SEED, image_size=REAL_SIZE, anatomy='real',
                     real_ct_dir=real_dataset['real_ct'], workers=1)
    files = png_files(real_dataset['out'])
    assert files == png_files(again) and len(files) == real_dataset['summary']['slices_written']
    names = ['DL_info.csv'] + [os.path.join('ground_truth', n) for n in sorted(
        os.listdir(os.path.join(again, 'ground_truth')))] + files
    _, mismatch, errors = filecmp.cmpfiles(real_dataset['out'], again, names, shallow=False)
    assert mismatch == [] and errors == []
    other = str(tmp_path / 'other')
    generate_dataset(other, 3, seed=REAL_SEED + 1, image_size=REAL_SIZE, anatomy='real',
                     real_ct_dir=real_dataset['real_ct'])
    with open(os.path.join(other, 'DL_info.csv')) as f1, \
            open(os.path.join(real_dataset['out'], 'DL_info.csv')) as f2:
        assert f1.read() != f2.read()


def test_real_patient_level_split(real_dataset):
    from mmlesion.synthetic.real_anatomy import plan_real_layout
    vols = real_dataset['truth']['volumes']
    by_split = {}
    for v in vols:
        by_split.setdefault(v['split'], set()).add(v['source_volume'])
        assert v['patient_index'] == {'lung1': 9001, 'lung2': 9002}[v['source_volume']]
        assert v['anatomy'] == 'real' and v['slice_interval'] == 5.0
        assert any(les['marked'] for les in v['lesions'])
    assert by_split == {'train': {'lung2'}, 'val': {'lung2'}, 'test': {'lung1'}}
    assert {v['role'] for v in vols} == {'V_M', 'V_H', 'V_H_test', 'val', 'test'}
    # Larger layouts without rendering: the held-out volume gives exactly the test split.
    for n, held_out in ((40, 'lung1'), (23, 'lung2')):
        layouts = plan_real_layout(n, 0, held_out)
        assert len(layouts) == n
        test = [lay for lay in layouts if lay.split == 'test']
        assert {lay.source for lay in test} == {held_out}
        assert held_out not in {lay.source for lay in layouts if lay.split != 'test'}
        assert len(test) == round(0.15 * n)
    assert [lay.split for lay in plan_real_layout(2, 0)] == ['test', 'train']


def test_real_synthetic_lesions_in_hosts_and_away_from_real_masks(real_dataset):
    from mmlesion.synthetic import real_lesion_masks
    out = real_dataset['out']
    n_near, rings = 0, {}
    for v in real_dataset['truth']['volumes']:
        w, h = v['image_size']
        dz, sp = v['slice_interval'], v['spacing'][0]
        start = v['slice_range'][0]
        real = real_lesion_masks(v, real_dataset['real_ct'])
        for les in v['lesions']:
            if les['origin'] != 'synthetic':
                continue
            for s in les['slices']:
                m = lesion_mask_from_truth(les, s['slice'], dz, (w, h))
                assert m.sum() == s['area_px']
                i = s['slice'] - start
                for rm in real.values():
                    for near in rm[max(0, i - 1):i + 2]:
                        if near.any():  # real lesion on this slice or the next: >= 5 mm apart
                            d = cv2.distanceTransform((~near).astype(np.uint8), cv2.DIST_L2, 5)
                            assert d[m].min() * sp >= 5.0
                            n_near += 1
            key = les['key_slice']
            m = lesion_mask_from_truth(les, key, dz, (w, h)).astype(np.uint8)
            ring = (cv2.dilate(m, np.ones((7, 7), np.uint8)) > 0) & ~(
                cv2.dilate(m, np.ones((3, 3), np.uint8)) > 0)
            rings.setdefault(les['organ'], []).append(
                float(np.median(read_hu(out, v['series'], key)[ring])))
    assert n_near >= 1
    # Visible: every synthetic lesion differs from the anatomy it replaces by >= 25 HU
    from mmlesion.synthetic.real_anatomy import MIN_VISIBLE_CONTRAST_HU
    contrasts = [abs(les['contrast_hu']) for v in real_dataset['truth']['volumes']
                 for les in v['lesions'] if les['origin'] == 'synthetic']
    assert contrasts and min(contrasts) >= MIN_VISIBLE_CONTRAST_HU - 1e-3
    # Organ-plausible surroundings: lung nodules in aerated lung (not outside air at -1000),
    # everything else inside the body's soft tissue or fat.
    assert len(rings.get('lung', [])) >= 3
    assert all(-960 < r < -500 for r in rings['lung'])
    for organ in ('mediastinum', 'liver', 'abdomen', 'soft_tissue'):
        assert all(-200 < r < 150 for r in rings.get(organ, []))
    assert set(rings) <= {'lung', 'mediastinum', 'liver', 'abdomen', 'soft_tissue'}


def test_real_truth_includes_real_lesions(real_dataset):
    from mmlesion.synthetic.lesion_masks import describe_mask_lesion, mask_lesions
    from mmlesion.synthetic.nrrd_volume import load_real_ct
    native = {}
    for vol in load_real_ct(real_dataset['real_ct']):
        m, = mask_lesions(vol.label)
        native[vol.name] = describe_mask_lesion(m, vol.spacing[:2])
    rows = real_dataset['rows']
    n_real = n_marked = 0
    for v in real_dataset['truth']['volumes']:
        nat = native[v['source_volume']]
        first, last = nat['slices'][0]['slice'], nat['slices'][-1]['slice']
        s0, s1 = v['slice_range']
        real = [les for les in v['lesions'] if les['origin'] == 'real']
        if s1 < first or s0 > last:
            assert real == []
            continue
        les, = real
        n_real += 1
        zs = [s['slice'] for s in les['slices']]
        assert max(s0, first) <= zs[0] and zs[-1] <= min(s1, last)
        assert les['source_volume'] == v['source_volume'] and les['lesion_type'] == 5
        # Resampling keeps physical sizes: spacing = source spacing * crop / output size.
        aug = v['augmentation']
        src_sp = {'lung1': 0.5703125, 'lung2': 0.6269531}[v['source_volume']]
        assert v['spacing'][0] == float('%g' % (src_sp * aug['crop_xy_size'][2]
                                                / aug['out_size']))
        if les['key_slice'] == nat['key_slice']:
            assert abs(les['diameters_mm'][0] - nat['diameters_mm'][0]) <= 2.5 * v['spacing'][0]
        if les['marked']:
            n_marked += 1
            rec = dict(zip(DL_INFO_HEADER, rows[les['csv_row'] - 1]))
            assert int(rec['Key_slice_index']) == les['key_slice']
            box = np.array(csv_numbers(rec['Bounding_boxes'])) - 1
            np.testing.assert_allclose(box, les['box2d'], atol=1e-9)
        else:
            assert les['csv_row'] is None
    assert n_real >= 3 and n_marked >= 1
    assert real_dataset['summary']['real_lesions'] == n_real


def test_real_output_converts_and_loads(real_dataset, tmp_path):
    from mmlesion.datasets.converters.deeplesion import convert_deeplesion
    from mmlesion.datasets.transforms import LoadMultiSliceFromFile
    s = convert_deeplesion(real_dataset['out'], str(tmp_path / 'ann'), log=None)
    summary = real_dataset['summary']
    assert s['rows_skipped'] == 0 and s['missing_slices'] == 0
    assert s['lesions'] == summary['marked_lesions'] == len(real_dataset['rows'])
    assert s['volumes'] == REAL_N
    with open(tmp_path / 'ann' / 'test.json') as f:
        im = json.load(f)['images'][0]
    img = LoadMultiSliceFromFile(num_slices=9)(dict(
        img_path=os.path.join(real_dataset['out'], 'Images_png', im['file_name']),
        slice_index=im['slice_index'], slice_range=im['slice_range'],
        slice_interval=im['slice_interval']))['img']
    assert img.shape == (im['height'], im['width'], 9) and im['width'] in (REAL_SIZE, 144)


def test_real_cli_and_argument_errors(real_ct_dir, tmp_path):
    summary = main(['--out', str(tmp_path / 'cli'), '--volumes', '2', '--image-size', '128',
                    '--anatomy', 'real', '--real-ct-dir', real_ct_dir, '--held-out', 'lung2',
                    '--quiet'])
    assert summary['anatomy'] == 'real'
    assert summary['volumes_per_source'] == {'lung1': {'train': 1}, 'lung2': {'test': 1}}
    with pytest.raises(ValueError, match='5 mm'):
        generate_dataset(str(tmp_path / 'a'), 2, anatomy='real', slice_intervals_mm=[2.5],
                         real_ct_dir=real_ct_dir)
    with pytest.raises(ValueError, match='held_out'):
        generate_dataset(str(tmp_path / 'b'), 2, anatomy='real', held_out='lung3',
                         real_ct_dir=real_ct_dir)
    with pytest.raises(ValueError, match='anatomy'):
        generate_dataset(str(tmp_path / 'c'), 2, anatomy='cartoon')
    with pytest.raises(FileNotFoundError, match='lung1_image.nrrd'):
        generate_dataset(str(tmp_path / 'd'), 2, anatomy='real', real_ct_dir=str(tmp_path))
    assert not os.path.exists(tmp_path / 'd')  # nothing written before the inputs are checked
    with open(tmp_path / 'cli' / 'ground_truth' / 'truth.json') as f:
        real = [les for v in json.load(f)['volumes'] for les in v['lesions']
                if les['origin'] == 'real']
    if real:
        with pytest.raises(ValueError, match='real lesion'):
            lesion_mask_from_truth(real[0], real[0]['key_slice'], 5.0, (128, 128))
