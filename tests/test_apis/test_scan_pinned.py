"""Pinned outputs of the volume scan on a fixed synthetic volume set (issue 15).

The digests were computed with the scan as it was before its input side was optimised (one
window at a time: blend the channels' slices, window the 9-channel stack, resize, pack); any
change of a model input -- a pixel to the last bit, a shape, a scale factor -- or of a tracklet
changes them.

* ``inputs``: every packed model input (``C x H x W`` float32 bytes) and its geometry, through
  :class:`~mmlesion.apis.VolumeScanInputs` -- numpy and OpenCV only.
* ``tracklets``: the full scan (:func:`~mmlesion.apis.predict_volumes`) with a seeded tiny
  MSCN on one torch thread.  If only this pin fails on another machine, compare the inputs pin:
  torch's CPU kernels, not the scan, differ there.

Volumes: 5, 2 and 2.5 mm slice intervals (fractional and whole channel offsets), one with a slice
listed as missing (channels step toward the key), one with an unknown interval (the key slice in
every channel), and one in-memory HU array; pipelines: the demo's composite window 9-slice input
at 1.2 mm/px and a single-window 3-slice input at 0.8 mm/px stored as uint8.
"""
import hashlib
from dataclasses import replace

import numpy as np
import pytest
from seeded_scan_model import seeded_scan_model

import mmlesion  # noqa: F401
from mmlesion.apis import VolumePredictor, predict_volumes
from mmlesion.apis.inference import fill_spacing
from mmlesion.datasets.volume_reader import VolumeReader
from mmlesion.evaluation.annotation_set import load_annotation_set

PIPELINES = {
    'composite9': [
        dict(type='LoadMultiSliceFromFile', num_slices=9, slice_interval_mm=2.0,
             window_hu=[(-1024, 3071), (-1000, 200), (-160, 240)]),
        dict(type='RescaleToSpacing', target_spacing_mm=1.2, max_size=192),
        dict(type='LoadLesionAnnotations', with_bbox=True),
        dict(type='PackLesionInputs'),
    ],
    'single3_uint8': [
        dict(type='LoadMultiSliceFromFile', num_slices=3, slice_interval_mm=2.0,
             window_hu=(-160, 240), to_float32=False),
        dict(type='RescaleToSpacing', target_spacing_mm=0.8, max_size=512),
        dict(type='PackLesionInputs'),
    ],
}

_META = ('img_id', 'slice_index', 'ori_shape', 'img_shape', 'scale_factor', 'spacing_mm')

# computed with the pre-optimisation scan (see the module docstring)
_PINNED_INPUTS = {
    'composite9': '8511f14f9fc27f7cc4fba8ba49b5d3a143371a6c4ac4f334de85db4b7db71ca2',
    'single3_uint8': 'd71865ca3626c259c100ec821a61dc80b7b6f81455a034f712a006058cb79472',
}
_PINNED_TRACKLETS = 'f4a24ab2c46c35fd2f45d1225c9ff6b835e5a79069e101f79c9608536c842a17'


def _volumes(root):
    vols = []
    for split in ('test', 'val'):
        vols += list(load_annotation_set(root / 'annotations' / f'{split}.json').volumes.values())
    fill_spacing(vols, [str(root / 'DL_info.csv')])
    by_interval = {}
    for v in vols:
        by_interval.setdefault(v.slice_interval, v)
    picked = [by_interval[k] for k in sorted(by_interval)]  # 2, 2.5, 5 mm
    five = by_interval[5.0]
    first, last = five.slice_range
    picked.append(replace(five, key=five.key + '/missing', missing_slices=[first + 3, first + 4]))
    picked.append(replace(five, key=five.key + '/no-interval', slice_interval=None))
    reader = VolumeReader(str(root / 'Images_png'), max_volumes=0)
    two = by_interval[2.0]
    hu = np.stack([reader.read_slice(two.series, z)
                   for z in range(two.slice_range[0], two.slice_range[0] + 6)])
    return picked, (hu, two.spacing, two.slice_range[0])


def _inputs_digest(items):
    h = hashlib.sha256()
    for item in items:
        h.update(f'V{item["volume"].key};{item["image_size"]};'.encode())
        for z, packed in item['slices']:
            arr = packed['inputs'].numpy()
            meta = packed['data_samples'].metainfo
            h.update(f'Z{z};{arr.dtype};{arr.shape};'.encode())
            h.update(np.ascontiguousarray(arr).tobytes())
            h.update(repr([(k, meta.get(k)) for k in _META]).encode())
    return h.hexdigest()


def _tracklets_digest(preds):
    h = hashlib.sha256()
    for p in preds:
        h.update(f'V{p.volume.key};{len(p.tracklets)};'.encode())
        for t in p.tracklets:
            h.update(np.ascontiguousarray(t.z, dtype='<i8').tobytes())
            h.update(np.ascontiguousarray(t.boxes, dtype='<f8').tobytes())
            h.update(np.ascontiguousarray(t.filled, dtype='u1').tobytes())
    return h.hexdigest()


@pytest.mark.parametrize('name', sorted(PIPELINES))
def test_scan_inputs_are_pinned(name, synthetic_converted, tiny_detector_cfg):
    root = synthetic_converted
    volumes, (hu, spacing, first) = _volumes(root)
    from mmlesion.apis.inference import ArrayVolume
    volumes.append(ArrayVolume(hu.astype(np.float32), tuple(spacing), first))
    predictor = VolumePredictor(seeded_scan_model(tiny_detector_cfg, PIPELINES[name]))
    inputs = predictor.inputs(volumes, str(root / 'Images_png'))
    items = [inputs[i] for i in range(len(inputs))]
    assert sum(len(i['slices']) for i in items) > 60
    assert _inputs_digest(items) == _PINNED_INPUTS[name]


def test_scan_tracklets_are_pinned(synthetic_converted, tiny_detector_cfg, one_torch_thread):
    root = synthetic_converted
    volumes, (hu, spacing, first) = _volumes(root)
    model = seeded_scan_model(tiny_detector_cfg, PIPELINES['composite9'])
    preds = list(predict_volumes(model, volumes[:3], str(root / 'Images_png'), score_thr=0.0,
                                 batch_size=4))
    preds += list(predict_volumes(model, [hu], spacing=spacing, first_slice=first,
                                  score_thr=0.0, batch_size=4))
    assert sum(len(p.tracklets) for p in preds) > 20
    assert _tracklets_digest(preds) == _PINNED_TRACKLETS
