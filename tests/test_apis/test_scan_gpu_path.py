"""The scan's GPU path on the CPU (issue 15, part 4): forward passes filled across volumes,
channels-last weights and inputs, autocast dtypes, pinned memory.

* Cross-volume passes: a hand-made schedule (which slices share a pass, when each volume is
  yielded) with a recording detector; then the seeded tiny MSCN, whose tracklets must equal the
  per-volume scan's to float tolerance.  Not bit for bit: BatchNorm runs in eval mode (no
  statistics across the batch) and a slice is never padded beyond its own size, but the CPU
  convolution kernels (oneDNN) sum in another order when a batch holds other slices (measured:
  boxes within 9.2e-5 px, scores identical, the same tracklet slices and fills).
* Channels-last on the CPU: the same tracklets to float tolerance (the summation order of the
  convolutions changes, not the maths).
* bf16 autocast runs on the CPU and really computes in bfloat16.
"""

import numpy as np
import pytest
import torch
from seeded_scan_model import seeded_scan_model

import mmlesion  # noqa: F401
from mmlesion.apis import VolumePredictor
from mmlesion.apis.inference import AMP_DTYPES, fill_spacing
from mmlesion.apis.scan_records import scan_fingerprint
from mmlesion.evaluation.annotation_set import load_annotation_set

PIPELINE = [
    dict(type='LoadMultiSliceFromFile', num_slices=9, slice_interval_mm=2.0,
         window_hu=[(-1024, 3071), (-1000, 200), (-160, 240)]),
    dict(type='RescaleToSpacing', target_spacing_mm=1.2, max_size=192),
    dict(type='PackLesionInputs'),
]


def _model(tiny_detector_cfg):
    return seeded_scan_model(tiny_detector_cfg, PIPELINE)


def _volumes(root, n=5):
    """``n`` volumes of the synthetic set: two of the same pixel spacing (their slices are
    resized alike, so they can share passes) between others of their own sizes."""
    vols = []
    for split in ('test', 'val', 'train'):
        vols += list(load_annotation_set(root / 'annotations' / f'{split}.json').volumes.values())
    fill_spacing(vols, [str(root / 'DL_info.csv')])
    by_spacing = {}
    for v in vols:
        by_spacing.setdefault((tuple(v.spacing[:2]), v.image_size), []).append(v)
    pair = next(group for group in by_spacing.values() if len(group) >= 2)[:2]
    others = [v for v in vols if v not in pair]
    return (others[:1] + pair + others[1:])[:n]


def _scan(model, volumes, root, **kwargs):
    kwargs = dict(dict(score_thr=0.0, batch_size=4), **kwargs)
    predictor = VolumePredictor(model, **kwargs)
    return list(predictor.predict(volumes, str(root / 'Images_png')))


def _assert_same_tracklets(preds, ref, atol=0.0):
    assert [p.volume.key for p in preds] == [q.volume.key for q in ref]
    for p, q in zip(preds, ref):
        assert sorted(p.slice_dets) == sorted(q.slice_dets)
        assert len(p.tracklets) == len(q.tracklets), p.volume.key
        for s, t in zip(p.tracklets, q.tracklets):
            np.testing.assert_array_equal(s.z, t.z)
            np.testing.assert_array_equal(s.filled, t.filled)
            np.testing.assert_allclose(s.boxes, t.boxes, rtol=0, atol=atol)


# ---------------------------------------------------------------- the cross-volume schedule
def _item(key, n, shape=(9, 8, 8)):
    """A prepared volume of ``n`` slices whose packed inputs name themselves (``tag``)."""
    return dict(volume=key, image_size=(8, 8), num_decoded=n,
                slices=[(z, dict(inputs=torch.zeros(shape), data_samples=None, tag=(key, z)))
                        for z in range(n)])


class _Recorder:
    """Stands in for :meth:`VolumePredictor.detect`: records each pass's slices and returns
    one detection per slice whose score encodes (volume, z)."""

    def __init__(self):
        self.passes = []

    def __call__(self, packed):
        self.passes.append([p['tag'] for p in packed])
        return [np.array([[0, 0, 4, 4, ord(v) + z / 100]], dtype=np.float64)
                for v, z in (p['tag'] for p in packed)]


def _schedule(tiny_detector_cfg, open_volumes):
    predictor = VolumePredictor(_model(tiny_detector_cfg), batch_size=4, cross_volume=True,
                                open_volumes=open_volumes, score_thr=0.5)
    predictor.detect = recorder = _Recorder()
    other = (9, 8, 12)  # C's slices were resized to another size: they never share a pass
    items = [_item('A', 3), _item('B', 3), _item('C', 2, other), _item('E', 0), _item('D', 2)]
    order = []

    def consumed():  # which items the predictor had pulled when it yielded
        for item in items:
            order.append(('in', item['volume']))
            yield item

    for pred in predictor.predict_items(consumed()):
        order.append(('out', pred.volume))
        # each slice's detection came back to its own volume and slice
        assert {z: d[0, 4] for z, d in pred.slice_dets.items()} == \
            {z: ord(pred.volume) + z / 100 for z in range(pred.num_slices)}
    return recorder.passes, order


def test_cross_volume_passes_fill_batches_across_volumes(tiny_detector_cfg):
    passes, order = _schedule(tiny_detector_cfg, open_volumes=4)
    # batch 4: A's 3 slices and B's first; B's last two with D's (same shape); C alone at the end
    assert passes == [[('A', 0), ('A', 1), ('A', 2), ('B', 0)],
                      [('B', 1), ('B', 2), ('D', 0), ('D', 1)],
                      [('C', 0), ('C', 1)]]
    # yielded in input order, each as soon as it and all before it were done
    assert order == [('in', 'A'), ('in', 'B'), ('out', 'A'), ('in', 'C'), ('in', 'E'),
                     ('in', 'D'), ('out', 'B'), ('out', 'C'), ('out', 'E'), ('out', 'D')]


def test_cross_volume_open_volumes_bounds_what_waits(tiny_detector_cfg):
    passes, order = _schedule(tiny_detector_cfg, open_volumes=1)
    # at most one volume waits: the oldest runs in a smaller pass as soon as a second arrives
    assert passes == [[('A', 0), ('A', 1), ('A', 2), ('B', 0)],
                      [('B', 1), ('B', 2)],
                      [('C', 0), ('C', 1)],
                      [('D', 0), ('D', 1)]]
    assert order == [('in', 'A'), ('in', 'B'), ('out', 'A'), ('in', 'C'), ('out', 'B'),
                     ('in', 'E'), ('out', 'C'), ('out', 'E'), ('in', 'D'), ('out', 'D')]


# ---------------------------------------------------------------- the seeded tiny MSCN
@pytest.fixture(scope='module')
def reference(synthetic_converted, make_tiny_detector):
    """The per-volume scan (the pinned path) of 5 volumes, batch 4, one torch thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        preds = _scan(_model(make_tiny_detector()), _volumes(synthetic_converted),
                      synthetic_converted)
    finally:
        torch.set_num_threads(n)
    assert sum(len(p.tracklets) for p in preds) > 20
    return preds


def test_cross_volume_scan_equals_the_per_volume_scan(synthetic_converted, tiny_detector_cfg,
                                                      reference, one_torch_thread):
    root = synthetic_converted
    model = _model(tiny_detector_cfg)
    predictor = VolumePredictor(model, score_thr=0.0, batch_size=4, cross_volume=True)
    passes = []
    detect = predictor.detect

    def recording(packed):
        passes.append([p['data_samples'].volume_id for p in packed])
        return detect(packed)

    predictor.detect = recording
    volumes = _volumes(root)
    preds = list(predictor.predict(volumes, str(root / 'Images_png')))
    # some passes really mix volumes, and all but the last of a shape are full
    assert any(len(set(p)) > 1 for p in passes)
    assert sum(len(p) == 4 for p in passes) >= sum(p.num_slices for p in preds) // 4 - 2
    box_diff = score_diff = 0.0
    for p, q in zip(preds, reference):
        for z in p.slice_dets:
            d, e = p.slice_dets[z], q.slice_dets[z]
            assert d.shape == e.shape
            box_diff = max(box_diff, float(np.abs(d[:, :4] - e[:, :4]).max(initial=0)))
            score_diff = max(score_diff, float(np.abs(d[:, 4] - e[:, 4]).max(initial=0)))
    # measured here: boxes within 9.2e-5 px, scores identical; same tracklets (z, fills)
    assert box_diff < 1e-3 and score_diff < 1e-5
    _assert_same_tracklets(preds, reference, atol=1e-3)


def test_channels_last_on_cpu_gives_the_same_tracklets(synthetic_converted, tiny_detector_cfg,
                                                       reference, one_torch_thread):
    model = _model(tiny_detector_cfg)
    preds = _scan(model, _volumes(synthetic_converted), synthetic_converted, channels_last=True)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    # float tolerance: 1e-3 px on boxes of ~12 px (the summation order changes)
    _assert_same_tracklets(preds, reference, atol=1e-3)


def test_compile_compiles_the_network_once_and_keeps_the_outputs(
        synthetic_converted, tiny_detector_cfg, monkeypatch, one_torch_thread):
    """``compile=True`` compiles backbone, neck and head (not mmdet's pre- and
    post-processing) once, at the first pass.  Compiling itself is torch's: the tiny MSCN takes
    minutes to compile on one CPU thread, so ``nn.Module.compile`` is recorded here rather than
    run (measured on a GPU in docs/results.md#scan-gpu)."""
    compiled = []
    monkeypatch.setattr(torch.nn.Module, 'compile',
                        lambda self, *a, **k: compiled.append(type(self).__name__))
    volumes = _volumes(synthetic_converted)[:2]
    ref = _scan(_model(tiny_detector_cfg), volumes, synthetic_converted)
    model = _model(tiny_detector_cfg)
    preds = _scan(model, volumes, synthetic_converted, compile=True)
    assert compiled == [type(model.backbone).__name__, type(model.neck).__name__,
                        type(model.bbox_head).__name__]
    _assert_same_tracklets(preds, ref)


def test_bf16_autocast_runs_on_cpu(synthetic_converted, tiny_detector_cfg, reference,
                                   one_torch_thread):
    model = _model(tiny_detector_cfg)
    seen = []
    conv = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    preds = _scan(model, _volumes(synthetic_converted, 2), synthetic_converted,
                  amp_dtype='bf16', channels_last=True, cross_volume=True)
    assert seen and set(seen) == {torch.bfloat16}
    assert [p.volume.key for p in preds] == [q.volume.key for q in reference[:2]]
    for p, q in zip(preds, reference):
        assert sorted(p.slice_dets) == sorted(q.slice_dets)
        for d in p.slice_dets.values():
            assert d.dtype == np.float64 and np.isfinite(d).all()
            assert ((d[:, 4] >= 0) & (d[:, 4] <= 1)).all()


# ---------------------------------------------------------------- settings
def test_precision_settings(tiny_detector_cfg):
    model = _model(tiny_detector_cfg)
    assert VolumePredictor(model).autocast_dtype is None
    # fp16=True as before: mmengine's autocast() choice, bfloat16 on the CPU
    assert VolumePredictor(model, fp16=True).autocast_dtype is torch.bfloat16
    assert VolumePredictor(model, amp_dtype='bfloat16').amp_dtype == 'bf16'
    assert VolumePredictor(model, amp_dtype='FP16').autocast_dtype is torch.float16
    assert VolumePredictor(model, fp16=True, amp_dtype='fp16').amp_dtype == 'fp16'
    assert set(AMP_DTYPES.values()) == {torch.float16, torch.bfloat16}
    with pytest.raises(ValueError, match='amp_dtype must be one of'):
        VolumePredictor(model, amp_dtype='fp8')
    with pytest.raises(ValueError, match='give one of them'):
        VolumePredictor(model, fp16=True, amp_dtype='bf16')
    with pytest.raises(ValueError, match='open_volumes'):
        VolumePredictor(model, cross_volume=True, open_volumes=0)
    # pinned memory: only for a model on CUDA (and never without CUDA)
    assert VolumePredictor(model).pins_memory is False
    assert VolumePredictor(model, pin_memory=True).pins_memory is torch.cuda.is_available()


def test_scan_fingerprint_names_the_gpu_path_only_when_on(tiny_detector_cfg):
    model = _model(tiny_detector_cfg)

    def fp(**kw):
        return scan_fingerprint(model, VolumePredictor(model, **kw), model.cfg.model)

    plain = fp()
    assert fp(pin_memory=False) == plain and fp(open_volumes=2) == plain
    others = [fp(amp_dtype='bf16'), fp(channels_last=True), fp(cross_volume=True), fp(fp16=True),
              fp(compile=True)]
    assert len({plain, *others}) == 6
