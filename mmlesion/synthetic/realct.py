"""The real chest CTs written as a small DeepLesion dataset with their complete mask truth.

:func:`write_realct_fixture` (CLI ``tools/make_realct_fixture.py``) writes the two real CT
volumes (:mod:`.nrrd_volume`) in DeepLesion's on-disk format (:mod:`.writer`), their lesions
described from the masks the DeepLesion way (:mod:`.lesion_masks`).

Frames and conventions:

- **Slice indices.** NRRD z index ``k`` (0-based) is DeepLesion slice index ``k + 1``:
  ``Images_png/<series>/001.png`` is ``z = 0``.
- **Pixels.** 0-based pixel centres at integers (x = column, y = row) in memory; DL_info.csv and
  the Lesion Harvester pickles hold them + 1 (DeepLesion's 1-based frame).
- **HU.** PNG raw = HU + 32768, with no clipping (:func:`~mmlesion.datasets.png_codec.
  hu_to_png_lossless`): every int16 value is stored exactly, so ``png - 32768`` equals the NRRD
  voxels bit for bit.
"""
import os
import time
from typing import Dict, Optional

import numpy as np

from mmlesion.datasets.png_codec import hu_to_png_lossless
from mmlesion.structures.volume_key import series_name, slice_file_name, volume_key
from mmlesion.utils.fileio import atomic_dump_json, atomic_dump_pickle, atomic_write_bytes

from .lesion_masks import (
    describe_mask_lesion,
    estimate_noise_hu,
    key_slice_of_mask,
    lesion_type_of,
    mask_lesions,
)
from .nrrd_volume import REAL_CT_IDS, body_level, load_real_ct, nrrd_z_to_slice, slice_to_nrrd_z
from .writer import (
    LUNG_WINDOW,
    SOFT_WINDOW,
    SPLIT_CODE,
    format_coord,
    format_number,
    prepare_output_dir,
    round3,
    write_dl_info,
    write_ground_truth,
)

# Fixture split (DL_info Train_Val_Test): the same patient-level choice as the real-anatomy
# generator, lung2 trains and lung1 is held out.
REAL_CT_SPLITS = {'lung1': 'test', 'lung2': 'train'}
# The ``generator`` name written into truth.json: the module's name when the format was fixed.
# It identifies the format of the files, not where the code lives, so it stays as it is (a
# changed string would change every fixture's bytes).
FIXTURE_FORMAT_NAME = 'mmlesion.datasets.realct'


def write_realct_fixture(out_dir: str, real_ct_dir: Optional[str] = None,
                         half_range_mm: Optional[float] = None, overwrite: bool = False,
                         verbose: bool = False) -> dict:
    """Write the real CT volumes as a DeepLesion dataset with their complete ground truth.

    Output (``out_dir``):

    - ``Images_png/0090NN_01_01/KKK.png``: 16-bit, raw = HU + 32768 exactly; ``KKK`` = NRRD z + 1.
    - ``DL_info.csv``: one row per real lesion (key slice = largest cross-section, RECIST,
      ``Bounding_boxes`` = RECIST extent + 5 px, 1-based; the real spacing; ``Slice_range`` = the
      released slices; lung window; gender and age empty (unknown)).  lung2 is ``train``,
      lung1 ``test`` (``REAL_CT_SPLITS``).
    - ``ground_truth/``: the generator's Lesion Harvester files (``Revised-Train-VM.pkl`` for the
      training volume, ``Revised-Test.pkl``, ``RECIST-Box-Test.pkl``, ``3D-Box.pkl`` for the test
      volume), plus ``Mask-Box-2D.pkl`` (every volume: ``{key: {z_rel: [[x1, y1, x2, y2, z_rel,
      z_rel], ...]}}``, the mask's extreme pixel centres on *every* slice it appears, 1-based
      x/y) and ``Mask-Box-3D.pkl`` (``{key: [[x1, y1, x2, y2, z1_rel, z2_rel], ...]}``, the
      mask's 3D extent), ``truth.json`` (the generator's schema, 0-based, absolute slices);
      ``summary.json``.

    Args:
        half_range_mm: None releases each whole volume (slices 1..Z).  A value releases
            ``key +- half_range_mm`` like DeepLesion (+-30 mm), clipped to the volume; lesions
            are then described on the released slices only.
    """
    t0 = time.time()
    out_dir = prepare_output_dir(out_dir, overwrite)
    gt_dir = os.path.join(out_dir, 'ground_truth')
    rows, volumes = [], []
    mask2d_pkl, mask3d_pkl = {}, {}
    lesion_id = 0
    n_slices = 0
    for vol in load_real_ct(real_ct_dir):
        if vol.label is None or not vol.label.any():
            raise ValueError(f'{vol.label_path}: the lesion mask is empty')
        patient, study, series = REAL_CT_IDS.get(vol.name, (9000 + len(volumes) + 1, 1, 1))
        split = REAL_CT_SPLITS.get(vol.name, 'train')
        name = series_name(patient, study, series)
        sx, sy, dz = (float(format_number(v)) for v in vol.spacing)
        Z = vol.num_slices
        W, H = vol.image_size
        lesions = mask_lesions(vol.label)
        z0, z1 = 0, Z - 1
        if half_range_mm is not None:
            h = int(round(float(half_range_mm) / dz))
            keys = [key_slice_of_mask(m) for m in lesions]
            z0, z1 = max(0, min(keys) - h), min(Z - 1, max(keys) + h)
        start, end = nrrd_z_to_slice(z0), nrrd_z_to_slice(z1)
        key = volume_key(patient, study, series, start, end)
        for z in range(z0, z1 + 1):
            atomic_write_bytes(os.path.join(out_dir, 'Images_png', slice_file_name(name, z + 1)),
                               hu_to_png_lossless(vol.hu[z]))
            n_slices += 1
        vol_lesions = []
        for i, m in enumerate(lesions):
            sub = m[z0:z1 + 1]
            if not sub.any():
                continue
            d = describe_mask_lesion(sub, (sx, sy), slice_of=lambda z: nrrd_z_to_slice(z + z0))
            kz = slice_to_nrrd_z(d['key_slice'])
            organ, ltype = lesion_type_of(vol.hu[kz], m[kz])
            window = LUNG_WINDOW if organ == 'lung' else SOFT_WINDOW
            recist, box = d['recist'], d['box2d']
            zn = body_level(kz, Z, dz)
            cxn = 0.5 * (recist[0] + recist[2]) / W
            cyn = 0.5 * (recist[1] + recist[3]) / H
            rows.append([
                f'{name}_{d["key_slice"]:03d}.png', patient, study, series, d['key_slice'],
                ', '.join(format_coord(v + 1.0) for v in recist),
                ', '.join(format_coord(v + 1.0) for v in box),
                f'{format_number(d["diameters_px"][0])}, {format_number(d["diameters_px"][1])}',
                ', '.join(format_number(round(v, 6)) for v in (cxn, cyn, zn)),
                -1 if split == 'train' else ltype, 0, f'{start}, {end}',
                f'{format_number(sx)}, {format_number(sy)}, {format_number(dz)}', f'{W}, {H}',
                f'{window[0]}, {window[1]}',
                '', '', SPLIT_CODE[split]])
            vol_lesions.append(dict(
                id=lesion_id, series_index=i, origin='real', organ=organ, lesion_type=ltype,
                kind='real', marked=True, noisy=False, csv_row=len(rows),
                key_slice_relative=d['key_slice'] - start,
                volume_mm3=round(d['num_voxels'] * sx * sy * dz, 3),
                source_volume=vol.name, source_label_value=int(vol.label[m][0]), **d))
            lesion_id += 1
        role = 'V_M' if split == 'train' else split
        volumes.append(dict(
            key=key, series=name, patient_index=patient, study_index=study, series_id=series,
            subvolume_index=0, slice_range=[start, end], num_slices=end - start + 1,
            spacing=[sx, sy, dz], slice_interval=dz, image_size=[W, H], split=split, role=role,
            complete=True, region='chest_abdomen' if vol.name == 'lung2' else 'chest',
            noise_hu=round3(estimate_noise_hu(vol.hu[(z0 + z1) // 2])),
            soft_window=list(SOFT_WINDOW), gender=None, age=None,
            marked_key_slices=sorted(les['key_slice'] for les in vol_lesions),
            lesions=vol_lesions, lookalikes=[], anatomy='real', source_volume=vol.name,
            source_files=[os.path.basename(vol.image_path), os.path.basename(vol.label_path)],
            source_z_range=[z0, z1]))
        per_z: Dict[int, list] = {}
        for les in vol_lesions:
            for s in les['slices']:
                zr = s['slice'] - start
                per_z.setdefault(zr, []).append(
                    [np.float64(v + 1.0) for v in s['mask_box']] + [np.float64(zr)] * 2)
        mask2d_pkl[key] = dict(sorted(per_z.items()))
        mask3d_pkl[key] = [[np.float64(v + 1.0) for v in les['mask_box3d'][:4]]
                           + [np.float64(les['mask_box3d'][4] - start),
                              np.float64(les['mask_box3d'][5] - start)] for les in vol_lesions]
        if verbose:
            print(f'[make_realct_fixture] {vol.name} -> {key}: {end - start + 1} slices, '
                  f'{len(vol_lesions)} lesion(s)', flush=True)
    write_dl_info(os.path.join(out_dir, 'DL_info.csv'), rows)
    counts = write_ground_truth(gt_dir, volumes)
    atomic_dump_pickle(mask2d_pkl, os.path.join(gt_dir, 'Mask-Box-2D.pkl'))
    atomic_dump_pickle(mask3d_pkl, os.path.join(gt_dir, 'Mask-Box-3D.pkl'))
    counts['Mask-Box-2D.pkl'] = sum(len(b) for v in mask2d_pkl.values() for b in v.values())
    counts['Mask-Box-3D.pkl'] = sum(len(v) for v in mask3d_pkl.values())
    info = dict(
        generator=FIXTURE_FORMAT_NAME, format_version=1,
        source='pyradiomics 3.0.1 test data (lung1, lung2), BSD-3-Clause',
        frames={
            'x_y': '0-based pixels, pixel centres at integers; DL_info.csv and the pickles '
                   'hold these values + 1',
            'slice': 'absolute DeepLesion slice index = NRRD z index + 1; the pickles hold z '
                     'relative to the sub-volume start',
            'array': 'NRRD (x, y, z) transposed to (z, rows = y, columns = x)',
            'hu': 'PNG raw - 32768 equals the NRRD voxel exactly',
            'key_slice': 'largest cross-section of the mask (ties: nearest its mean z)',
            'mask_box': 'extreme mask pixel centres of a cross-section, x1, y1, x2, y2',
            'box': 'RECIST extent padded by 5 px, clipped to [0, W-1] x [0, H-1]',
        })
    atomic_dump_json(dict(info=info, volumes=volumes), os.path.join(gt_dir, 'truth.json'))
    summary = dict(volumes=len(volumes), lesions=lesion_id, dl_info_rows=len(rows),
                   slices_written=n_slices, ground_truth_boxes=counts,
                   volume_keys=[v['key'] for v in volumes],
                   generation_time_s=round(time.time() - t0, 3))
    atomic_dump_json(summary, os.path.join(out_dir, 'summary.json'), indent=2)
    return summary
