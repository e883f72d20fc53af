"""The synthetic DeepLesion-format generator: format, frames, pixel values, truth, determinism."""
import csv
import filecmp
import json
import math
import os
import re

import cv2
import numpy as np
import pytest

from mmlesion.datasets.recist import recist_box, recist_from_mask
from mmlesion.synthetic import (DL_INFO_HEADER, generate_dataset, hu_to_png_bytes,
                                         lesion_mask_from_truth, main)
from mmlesion.synthetic.generator import SLICE_INTERVALS_MM, plan_series
from mmlesion.synthetic.layout import plan_layout
from mmlesion.structures.volume_key import parse_volume_key
from mmlesion.utils.safe_pickle import load_pickle

# SPEC §1.1; also compared with the real sample when it is present.
REAL_HEADER = ('File_name,Patient_index,Study_index,Series_ID,Key_slice_index,'
               'Measurement_coordinates,Bounding_boxes,Lesion_diameters_Pixel_,'
               'Normalized_lesion_location,Coarse_lesion_type,Possibly_noisy,Slice_range,'
               'Spacing_mm_px_,Image_size,DICOM_windows,Patient_gender,Patient_age,Train_Val_Test')
REAL_SAMPLE = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'data',
                           'deeplesion_dl_info_sample', 'DL_info.csv')
N_VOLUMES = 10
SIZE = 128


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('synthetic') / 'a')
    # 2 forked workers here, 1 in the determinism test: the bytes must not depend on it
    summary = generate_dataset(out, N_VOLUMES, seed=7, image_size=SIZE, workers=2)
    with open(os.path.join(out, 'ground_truth', 'truth.json')) as f:
        truth = json.load(f)
    with open(os.path.join(out, 'DL_info.csv'), newline='') as f:
        rows = list(csv.reader(f))
    return dict(out=out, summary=summary, truth=truth, rows=rows)


def _png_files(root):
    found = []
    for series in sorted(os.listdir(os.path.join(root, 'Images_png'))):
        for name in sorted(os.listdir(os.path.join(root, 'Images_png', series))):
            found.append(os.path.join('Images_png', series, name))
    return found


def _nums(field):
    return [float(v) for v in field.split(', ')]


def _read_hu(out, series, k):
    raw = cv2.imread(os.path.join(out, 'Images_png', series, f'{k:03d}.png'),
                     cv2.IMREAD_UNCHANGED)
    assert raw is not None and raw.dtype == np.uint16
    return raw.astype(np.float64) - 32768.0


def test_same_seed_same_bytes_any_workers_other_seed_differs(dataset, tmp_path):
    again = str(tmp_path / 'again')
    generate_dataset(again, N_VOLUMES, seed=7, image_size=SIZE, workers=1)
    files = _png_files(dataset['out'])
    assert files == _png_files(again) and len(files) == dataset['summary']['slices_written']
    names = ['DL_info.csv'] + [os.path.join('ground_truth', n) for n in sorted(
        os.listdir(os.path.join(again, 'ground_truth')))] + files
    _, mismatch, errors = filecmp.cmpfiles(dataset['out'], again, names, shallow=False)
    assert mismatch == [] and errors == []
    other = str(tmp_path / 'other')
    generate_dataset(other, 3, seed=8, image_size=SIZE)
    with open(os.path.join(other, 'DL_info.csv')) as f1, \
            open(os.path.join(dataset['out'], 'DL_info.csv')) as f2:
        assert f1.read() != f2.read()


def test_dl_info_header_quoting_and_fields(dataset):
    with open(os.path.join(dataset['out'], 'DL_info.csv'), newline='') as f:
        lines = f.read().split('\n')
    assert lines[0] == REAL_HEADER == ','.join(DL_INFO_HEADER)
    if os.path.exists(REAL_SAMPLE):
        with open(REAL_SAMPLE) as f:
            assert f.readline().rstrip('\n') == lines[0]
    assert lines[-1] == '' and '\r' not in ''.join(lines)
    rows = dataset['rows'][1:]
    assert len(rows) == dataset['summary']['dl_info_rows'] > 0
    # The real quoting: multi-valued fields quoted with ", " separators, nothing else quoted.
    quoted = re.compile(r'^\d{6}_\d{2}_\d{2}_\d{3}\.png,\d+,\d+,\d+,\d+,'
                        r'"[^"]+","[^"]+","[^"]+","[^"]+",-?\d,[01],"\d+, \d+",'
                        r'"[^"]+","\d+, \d+","-?\d+, -?\d+",[FM],\d*,[123]$')
    for line in lines[1:-1]:
        assert quoted.match(line), line
    truth_keys = {v['key']: v for v in dataset['truth']['volumes']}
    for row in rows:
        rec = dict(zip(DL_INFO_HEADER, row))
        assert len(row) == 18
        series = f"{int(rec['Patient_index']):06d}_{int(rec['Study_index']):02d}_" \
                 f"{int(rec['Series_ID']):02d}"
        assert rec['File_name'] == f"{series}_{int(rec['Key_slice_index']):03d}.png"
        assert len(_nums(rec['Measurement_coordinates'])) == 8
        assert len(_nums(rec['Bounding_boxes'])) == 4
        assert len(_nums(rec['Lesion_diameters_Pixel_'])) == 2
        loc = _nums(rec['Normalized_lesion_location'])
        assert len(loc) == 3 and all(0.0 <= v <= 1.0 for v in loc)
        start, end = (int(v) for v in _nums(rec['Slice_range']))
        assert start <= int(rec['Key_slice_index']) <= end
        assert f'{series}_{start:03d}-{end:03d}' in truth_keys
        sx, sy, sz = _nums(rec['Spacing_mm_px_'])
        assert sx == sy and 0.6 <= sx <= 0.98 and sz in SLICE_INTERVALS_MM
        w, h = (int(v) for v in _nums(rec['Image_size']))
        assert (w, h) in ((SIZE, SIZE), (SIZE * 3 // 4, SIZE * 3 // 4))
        lo, hi = (int(v) for v in _nums(rec['DICOM_windows']))
        assert lo < hi
        split = int(rec['Train_Val_Test'])
        ctype = int(rec['Coarse_lesion_type'])
        assert ctype == -1 if split == 1 else 1 <= ctype <= 8
        assert rec['Patient_age'] == '' or 0 < int(rec['Patient_age']) < 100


def test_csv_coordinates_are_one_based(dataset):
    rows = dataset['rows'][1:]
    n_checked = 0
    for vol in dataset['truth']['volumes']:
        for les in vol['lesions']:
            if not les['marked']:
                assert les['csv_row'] is None
                continue
            rec = dict(zip(DL_INFO_HEADER, rows[les['csv_row'] - 1]))
            assert int(rec['Key_slice_index']) == les['key_slice']
            recist0 = les.get('csv_recist', les['recist'])
            box0 = les.get('csv_box', les['box2d'])
            np.testing.assert_allclose(np.array(_nums(rec['Measurement_coordinates'])) - 1,
                                       recist0, atol=1e-9)
            np.testing.assert_allclose(np.array(_nums(rec['Bounding_boxes'])) - 1, box0,
                                       atol=1e-9)
            # DeepLesion's box is the RECIST extent padded by 5 px (clipped to the image).
            w, h = vol['image_size']
            np.testing.assert_allclose(recist_box(recist0, 5, (w, h)), box0, atol=2e-3)
            long_px, short_px = _nums(rec['Lesion_diameters_Pixel_'])
            r = recist0
            assert long_px == pytest.approx(math.hypot(r[2] - r[0], r[3] - r[1]), abs=2e-3)
            assert short_px == pytest.approx(math.hypot(r[6] - r[4], r[7] - r[5]), abs=2e-3)
            n_checked += 1
    assert n_checked == len(rows)


def test_hu_to_png_bytes_offset_and_clipping():
    hu = np.array([[-2000.0, -1000.4, -0.6, 0.0], [40.5, 3071.0, 5000.0, -1024.0]],
                  dtype=np.float32)
    raw = cv2.imdecode(np.frombuffer(hu_to_png_bytes(hu), np.uint8), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    # Clipped to [-1024, 3071] HU, rounded half to even, + 32768.
    np.testing.assert_array_equal(raw, [[31744, 31768, 32767, 32768], [32808, 35839, 35839, 31744]])


def test_png_values_are_hu_plus_32768(dataset):
    out = dataset['out']
    deviations = []
    for vol in dataset['truth']['volumes']:
        w, h = vol['image_size']
        first = _read_hu(out, vol['series'], vol['slice_range'][0])
        assert first.shape == (h, w)
        # Background air: about -1000 HU (raw about 31768), clipped at -1024.
        corner = first[:5, :5]
        assert -1024 <= corner.min() and abs(corner.mean() + 1000) < 4 * vol['noise_hu']
        for les in vol['lesions']:
            rb = les['radii_px'][1]
            # Lesions whose centre region is free of partial volume (in-plane smoothing and
            # slab averaging would pull small, thin ones toward the host).
            if ((les['key_center_weight'] or 0) < 0.99 or rb < 4.0
                    or les['radii_mm'][2] < vol['slice_interval']):
                continue
            hu = _read_hu(out, vol['series'], les['key_slice'])
            cx, cy = les['center_px']
            yy, xx = np.mgrid[:h, :w]
            sel = (xx - cx) ** 2 + (yy - cy) ** 2 <= (0.4 * rb) ** 2
            n = int(sel.sum())
            assert n >= 1
            dev = float(hu[sel].mean()) - les['hu']
            # Noise (correlated by the mild smoothing) plus the lesion's own texture.
            assert abs(dev) <= 10 + 5 * vol['noise_hu'] / math.sqrt(n) + 3 * les['texture_hu']
            deviations.append(dev)
    assert len(deviations) >= 4
    assert abs(np.mean(deviations)) < 6.0  # no systematic offset


def test_splits_roles_and_patients(dataset):
    vols = dataset['truth']['volumes']
    assert {v['split'] for v in vols} == {'train', 'val', 'test'}
    roles = [v['role'] for v in vols]
    assert roles.count('V_M') >= 1 and roles.count('V_H_test') >= 1 and 'V_H' in roles
    split_of = {}
    for v in vols:
        assert split_of.setdefault(v['patient_index'], v['split']) == v['split']
        assert (v['role'] in ('V_M', 'V_H', 'V_H_test')) == (v['split'] == 'train')
        assert v['complete'] == (v['role'] != 'V_H')
        assert any(les['marked'] for les in v['lesions'])
        key = parse_volume_key(v['key'])
        assert (key.start, key.end) == tuple(v['slice_range'])
    s = dataset['summary']
    assert s['volumes'] == N_VOLUMES == sum(s['volumes_per_split'].values())
    assert s['lesions'] == sum(len(v['lesions']) for v in vols)
    assert s['marked_lesions'] == s['dl_info_rows']
    assert s['lookalikes'] == sum(len(v['lookalikes']) for v in vols)
    assert s['slices_written'] == sum(v['num_slices'] for v in vols)
    with open(os.path.join(dataset['out'], 'summary.json')) as f:
        assert json.load(f) == s


def test_pickles_load_and_match_truth(dataset):
    gt = os.path.join(dataset['out'], 'ground_truth')
    vols = dataset['truth']['volumes']
    expected = {'Revised-Train-VM.pkl': 'V_M', 'Revised-Train-VHtest.pkl': 'V_H_test',
                'Revised-Valid.pkl': 'val', 'Revised-Test.pkl': 'test'}
    for name, role in expected.items():
        data = load_pickle(os.path.join(gt, name))
        sel = [v for v in vols if v['role'] == role]
        assert set(data) == {v['key'] + '.annot' for v in sel}
        for v in sel:
            per_z = data[v['key'] + '.annot']
            assert sum(len(b) for b in per_z.values()) == len(v['lesions'])
            start = v['slice_range'][0]
            for les in v['lesions']:
                z = les['key_slice'] - start
                assert isinstance(z, int) and z in per_z
                box = [float(x) for x in les['box2d']]
                # 1-based x/y, relative z repeated, numpy float64 like the releases.
                assert any(np.allclose(np.array(b[:4]) - 1, box, atol=1e-9)
                           and b[4] == b[5] == z for b in per_z[z])
                assert all(isinstance(x, np.float64) for b in per_z[z] for x in b)
    for name, split in (('RECIST-Box-Valid.pkl', 'val'), ('RECIST-Box-Test.pkl', 'test')):
        data = load_pickle(os.path.join(gt, name))
        marked = {v['key']: [les for les in v['lesions'] if les['marked'] and not les['noisy']]
                  for v in vols if v['split'] == split}
        assert set(data) == {k for k, m in marked.items() if m}
        for key, lesions in marked.items():
            if lesions:
                assert sum(len(b) for b in data[key].values()) == len(lesions)
    data = load_pickle(os.path.join(gt, '3D-Box.pkl'))
    test_vols = [v for v in vols if v['split'] == 'test']
    assert set(data) == {v['key'] for v in test_vols}
    for v in test_vols:
        start, end = v['slice_range']
        boxes = data[v['key']]
        assert len(boxes) == len(v['lesions'])
        for b, les in zip(boxes, v['lesions']):
            np.testing.assert_allclose(np.array(b[:4]) - 1, les['box3d'][:4], atol=1e-9)
            assert 0 <= b[4] <= les['key_slice'] - start <= b[5] <= end - start


def test_truth_box_contains_cross_section(dataset):
    n = 0
    for vol in dataset['truth']['volumes']:
        w, h = vol['image_size']
        dz = vol['slice_interval']
        for les in vol['lesions']:
            for s in les['slices']:
                mask = lesion_mask_from_truth(les, s['slice'], dz, (w, h))
                ys, xs = np.nonzero(mask)
                # The stored cross-section is exactly the re-drawn one.
                assert len(xs) == s['area_px']
                assert [xs.min(), ys.min(), xs.max(), ys.max()] == s['mask_box']
                if s['slice'] != les['key_slice']:
                    continue
                n += 1
                r = recist_from_mask(mask, (vol['spacing'][0], vol['spacing'][1]))
                np.testing.assert_allclose(r['long_axis'] + r['short_axis'], les['recist'],
                                           atol=6e-4)
                # DeepLesion's box is the RECIST extent + 5 px.  The axes of a disk of radius
                # r at 45 degrees reach r / sqrt(2) along x and y: up to r = 5 / (1 - 1 /
                # sqrt(2)) = 17 px the box holds every pixel, beyond it may cut the rim.
                x1, y1, x2, y2 = les['box2d']
                inside = (xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)
                if les['radii_px'][0] * (1 + sum(e for _, e, _ in les['lobes'])) <= 17.0:
                    assert inside.all()
                assert inside.mean() >= 0.95
                cx, cy = les['center_px']
                assert mask[int(round(cy)), int(round(cx))]
    assert n == sum(len(v['lesions']) for v in dataset['truth']['volumes'])


def test_lookalikes_span_many_slices(dataset):
    vols = dataset['truth']['volumes']
    la_extent = [la['num_slices'] * v['slice_interval'] for v in vols for la in v['lookalikes']]
    les_extent = [len(les['slices']) * v['slice_interval'] for v in vols
                  for les in v['lesions']]
    assert len(la_extent) >= 10
    # A tube looks like a nodule on one slice but continues: it runs through most of the
    # sub-volume, far beyond a lesion's extent.
    assert np.median(la_extent) >= 30.0
    assert np.median(la_extent) >= 2 * np.median(les_extent)
    frac = [la['num_slices'] / v['num_slices'] for v in vols for la in v['lookalikes']]
    assert np.median(frac) >= 0.6
    for v in vols:
        for la in v['lookalikes']:
            assert la['kind'] in ('vessel', 'bowel') and la['num_slices'] == len(la['slices'])
            zs = [s['slice'] for s in la['slices']]
            assert la['box3d'][4:] == [min(zs), max(zs)]
            assert v['slice_range'][0] <= min(zs) and max(zs) <= v['slice_range'][1]


def test_plan_statistics_over_many_volumes():
    """Marked fraction, sizes, spacing and sub-volume layout, without rendering pixels."""
    marked = total = two_subvolumes = 0
    for lay in plan_layout(60, seed=11):
        plan = plan_series(lay, 11, 256, SLICE_INTERVALS_MM, 40, 0.1, 0.02)
        assert 0.6 <= plan.spacing_mm <= 0.98
        assert plan.slice_interval_mm in SLICE_INTERVALS_MM
        for sv in plan.subvolumes:
            assert 1 <= sv.end - sv.start + 1 <= 40
            own = [les for les in plan.lesions if les.subvolume == sv.index]
            assert sum(les.marked for les in own) == len(sv.key_slices) >= 1
        if len(plan.subvolumes) == 2:
            two_subvolumes += 1
            assert plan.subvolumes[1].start > plan.subvolumes[0].end + 1  # not contiguous
        for les in plan.lesions:
            d_mm = 2 * les.shape.a * plan.spacing_mm
            assert 5.0 - 1e-9 <= d_mm <= 50.0 * math.sqrt(0.5) + 1e-9
            assert les.shape.b <= les.shape.a
        marked += sum(les.marked for les in plan.lesions)
        total += len(plan.lesions)
    assert two_subvolumes >= 1
    assert 0.35 <= marked / total <= 0.55  # DeepLesion: about 45% of lesions marked


def test_cli_small_images_and_overwrite(tmp_path):
    out = str(tmp_path / 'cli')
    args = ['--out', out, '--volumes', '2', '--seed', '3', '--image-size', '128',
            '--small-image-fraction', '1', '--slices-mm', '5', '--quiet']
    summary = main(args)
    assert summary['volumes'] == 2 and summary['image_sizes'] == {'96x96': 2}
    assert summary['slice_intervals'] == {'5': 2}
    with open(os.path.join(out, 'DL_info.csv')) as f:
        rows = list(csv.reader(f))[1:]
    assert all(r[13] == '96, 96' and r[12].endswith(', 5') for r in rows)
    png = cv2.imread(os.path.join(out, 'Images_png', rows[0][0][:12], rows[0][0][13:]),
                     cv2.IMREAD_UNCHANGED)
    assert png.shape == (96, 96) and png.dtype == np.uint16
    with pytest.raises(FileExistsError, match='already holds a dataset'):
        main(args)
    assert main(args + ['--overwrite'])['volumes'] == 2


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_volumes'):
        generate_dataset(str(tmp_path / 'a'), 0)
    with pytest.raises(ValueError, match='image_size'):
        generate_dataset(str(tmp_path / 'b'), 1, image_size=32)
    with pytest.raises(ValueError, match='slice intervals'):
        generate_dataset(str(tmp_path / 'c'), 1, slice_intervals_mm=[0.0])
    with pytest.raises(ValueError, match='workers must be >= 1'):
        generate_dataset(str(tmp_path / 'd'), 1, workers=0)
    assert not os.path.exists(tmp_path / 'd')  # refused before anything is written


# ------------------------------------------------------------------------ real-anatomy mode
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
    from mmlesion.synthetic.real_anatomy import (BONE, LUNG, MEDIASTINUM, OUTSIDE, WALL,
                                                          segment_tissues)
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
    files = _png_files(real_dataset['out'])
    assert files == _png_files(again) and len(files) == real_dataset['summary']['slices_written']
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
                float(np.median(_read_hu(out, v['series'], key)[ring])))
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
    from mmlesion.synthetic.realct import describe_mask_lesion, load_real_ct, mask_lesions
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
            np.testing.assert_allclose(np.array(_nums(rec['Bounding_boxes'])) - 1, les['box2d'],
                                       atol=1e-9)
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
