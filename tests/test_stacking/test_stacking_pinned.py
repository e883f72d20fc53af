"""Pinned output of the stacker on a fixed seeded workload.

The digests below were computed with the reference implementation (per-slice numpy, one
``_Track`` object per detection, filterpy Kalman filters) before the stacker was optimised; any
change of the tracklets -- slices, boxes to the last bit, gap flags, order -- changes them.
The workload is generated here (not imported from the benchmark) so that the pin cannot drift
with the benchmark: lesion-like objects drifting and growing over 3-15 slices with missed slices,
near-duplicate detections (assignment conflicts), clutter, tied scores, boxes crossing the image
border, missing and empty slices.
"""
import hashlib

import numpy as np
import pytest

from mmlesion.stacking import stack_volume


def _volume(rng: np.random.Generator, n_slices: int = 40, dets: float = 10.0,
            size=(512, 512)) -> dict:
    """``{z: (n, 5)}`` detections of one synthetic sub-volume (z from 100)."""
    w_img, h_img = size
    z0 = 100
    slices = {z: [] for z in range(z0, z0 + n_slices)}
    for _ in range(3 * max(1, int(round(dets * 0.3)))):
        length = int(rng.integers(3, 16))
        start = int(rng.integers(z0, z0 + n_slices - 2))
        cx, cy = rng.uniform(-10, w_img + 10), rng.uniform(-10, h_img + 10)
        s0 = rng.uniform(8, 80)
        drift = rng.normal(0, 0.03 * s0, size=2)
        peak = rng.uniform(0.2, 0.95)
        for k in range(length):
            z = start + k
            if z not in slices or rng.random() < 0.1:  # missed slice
                continue
            grow = 1.0 - abs(k - length / 2) / length
            s = s0 * (0.7 + 0.3 * grow)
            c = np.array([cx, cy]) + drift * k + rng.normal(0, 0.01 * s0, size=2)
            score = float(np.clip(peak * (0.6 + 0.4 * grow) + rng.normal(0, 0.03), 0, 1))
            box = [c[0] - s / 2, c[1] - s / 2, c[0] + s / 2, c[1] + s / 2, score]
            slices[z].append(box)
            if rng.random() < 0.15:  # a near-duplicate: two admissible links for one track
                j = rng.normal(0, 0.01 * s0, size=4)
                slices[z].append([box[0] + j[0], box[1] + j[1], box[2] + j[2], box[3] + j[3],
                                  round(score, 1)])
    for z in slices:
        for _ in range(rng.poisson(dets * 0.8)):
            cx, cy = rng.uniform(0, w_img), rng.uniform(0, h_img)
            s = rng.uniform(6, 60)
            slices[z].append([cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2,
                              float(rng.choice([0.05, 0.2, 0.3, rng.uniform(0, 0.6)]))])
    out = {z: np.asarray(v, dtype=np.float64).reshape(-1, 5) for z, v in slices.items()}
    for z in rng.choice(list(out), size=3, replace=False):
        if rng.random() < 0.5:
            del out[z]  # a slice not given at all
        else:
            out[z] = np.zeros((0, 5))
    return out


def _digest(results) -> str:
    h = hashlib.sha256()
    for trks in results:
        h.update(b'V%d;' % len(trks))
        for t in trks:
            h.update(b'T%d;' % len(t))
            h.update(np.ascontiguousarray(t.z, dtype='<i8').tobytes())
            h.update(np.ascontiguousarray(t.boxes, dtype='<f8').tobytes())
            h.update(np.ascontiguousarray(t.filled, dtype='u1').tobytes())
    return h.hexdigest()


# name: (seed, volumes, image size, stack_volume keyword arguments)
_CASES = {
    'default': (15, 24, (512, 512), {}),
    'extend2_plus_one': (16, 10, (300, 260),
                         dict(extend=2, link_iou=0.7, fuse_iou=0.7, plus_one=True)),
    'no_fusion_low_thr': (17, 6, (512, 512), dict(extend=0, score_thr=0.0, link_iou=0.5)),
}

# computed with the reference implementation (see the module docstring)
_PINNED = {
    'default': dict(tracklets=5594, multi=308, filled=91, longest=15, digest=(
        'ea59505edb6d35c8c910fccfa2752956755e5d609ff7e84aad3c438233240b75')),
    'extend2_plus_one': dict(tracklets=2370, multi=153, filled=134, longest=15, digest=(
        'dcc1dc88bc59c19d4c0a58b9307a67a95156399d75c20844a9711cd525a12762')),
    'no_fusion_low_thr': dict(tracklets=1884, multi=82, filled=0, longest=13, digest=(
        '0b8dcc6152db72fecdf705a3cc9aef41e5c7b0666e8e928e363f5fc1a955ee6b')),
}


def _run(name):
    seed, n_vol, size, kwargs = _CASES[name]
    rng = np.random.default_rng(seed)
    volumes = [_volume(rng, size=size) for _ in range(n_vol)]
    return [stack_volume(v, size, **kwargs) for v in volumes]


def _summary(results):
    trks = [t for r in results for t in r]
    return dict(tracklets=len(trks), multi=sum(len(t) > 1 for t in trks),
                filled=int(sum(t.filled.sum() for t in trks)),
                longest=max(len(t) for t in trks), digest=_digest(results))


@pytest.mark.parametrize('name', sorted(_CASES))
def test_stacker_output_is_pinned(name):
    assert _summary(_run(name)) == _PINNED[name]


def test_first_tracklets_explicit_values():
    first, second = _run('default')[0][:2]
    assert first.z.tolist() == list(range(117, 124)) and not first.filled.any()
    assert first.boxes[0].tolist() == [189.81239793788941, 0.0, 233.62108564009506,
                                       39.363762179425024, 0.7438337310842532]
    assert first.score == 0.933381919545212 and first.best_index == 3
    assert second.z.tolist() == list(range(131, 139))
    assert second.boxes[-1].tolist() == [98.79783675133062, 364.0159418779067,
                                         129.75545794026556, 394.9735630668416, 0.699252523143823]
