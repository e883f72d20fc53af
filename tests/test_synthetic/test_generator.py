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
from generated_files import csv_numbers, png_files, read_hu

from mmlesion.cli.make_synthetic import main
from mmlesion.datasets.converters.dl_info import DL_INFO_HEADER
from mmlesion.datasets.recist import recist_box, recist_from_mask
from mmlesion.structures.volume_key import parse_volume_key
from mmlesion.synthetic import generate_dataset, lesion_mask_from_truth
from mmlesion.synthetic.generator import SLICE_INTERVALS_MM, plan_series
from mmlesion.synthetic.layout import plan_layout
from mmlesion.utils.safe_pickle import load_pickle

# docs/method.md#data-deeplesion; also compared with the real sample when it is present.
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


def test_same_seed_same_bytes_any_workers_other_seed_differs(dataset, tmp_path):
    again = str(tmp_path / 'again')
    generate_dataset(again, N_VOLUMES, seed=7, image_size=SIZE, workers=1)
    files = png_files(dataset['out'])
    assert files == png_files(again) and len(files) == dataset['summary']['slices_written']
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
        assert len(csv_numbers(rec['Measurement_coordinates'])) == 8
        assert len(csv_numbers(rec['Bounding_boxes'])) == 4
        assert len(csv_numbers(rec['Lesion_diameters_Pixel_'])) == 2
        loc = csv_numbers(rec['Normalized_lesion_location'])
        assert len(loc) == 3 and all(0.0 <= v <= 1.0 for v in loc)
        start, end = (int(v) for v in csv_numbers(rec['Slice_range']))
        assert start <= int(rec['Key_slice_index']) <= end
        assert f'{series}_{start:03d}-{end:03d}' in truth_keys
        sx, sy, sz = csv_numbers(rec['Spacing_mm_px_'])
        assert sx == sy and 0.6 <= sx <= 0.98 and sz in SLICE_INTERVALS_MM
        w, h = (int(v) for v in csv_numbers(rec['Image_size']))
        assert (w, h) in ((SIZE, SIZE), (SIZE * 3 // 4, SIZE * 3 // 4))
        lo, hi = (int(v) for v in csv_numbers(rec['DICOM_windows']))
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
            np.testing.assert_allclose(np.array(csv_numbers(rec['Measurement_coordinates'])) - 1,
                                       recist0, atol=1e-9)
            np.testing.assert_allclose(np.array(csv_numbers(rec['Bounding_boxes'])) - 1, box0,
                                       atol=1e-9)
            # DeepLesion's box is the RECIST extent padded by 5 px (clipped to the image).
            w, h = vol['image_size']
            np.testing.assert_allclose(recist_box(recist0, 5, (w, h)), box0, atol=2e-3)
            long_px, short_px = csv_numbers(rec['Lesion_diameters_Pixel_'])
            r = recist0
            assert long_px == pytest.approx(math.hypot(r[2] - r[0], r[3] - r[1]), abs=2e-3)
            assert short_px == pytest.approx(math.hypot(r[6] - r[4], r[7] - r[5]), abs=2e-3)
            n_checked += 1
    assert n_checked == len(rows)


def test_png_values_are_hu_plus_32768(dataset):
    out = dataset['out']
    deviations = []
    for vol in dataset['truth']['volumes']:
        w, h = vol['image_size']
        first = read_hu(out, vol['series'], vol['slice_range'][0])
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
            hu = read_hu(out, vol['series'], les['key_slice'])
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
