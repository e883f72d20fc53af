"""FROC plots and the compressed curve behind them."""
import os

import numpy as np
import pytest

from mmlesion.evaluation.functional import evaluate_p3d, interp_sensitivity
from mmlesion.evaluation.metrics import compress_curve, froc_to_dict
from mmlesion.visualization import froc_plot_data, plot_froc

PNG = b'\x89PNG\r\n\x1a\n'


def _result(seed=0):
    rng = np.random.default_rng(seed)
    gt = {f'000001_01_01_{i:03d}-{i + 9:03d}': [(i + 2, [10, 10, 29, 29])] for i in range(10)}
    dets = {}
    for key, boxes in gt.items():
        z = boxes[0][0]
        dets[key] = [[(z, [10, 10, 29, 29, float(rng.uniform(0.3, 1))])],
                     [(z, [60, 60, 79, 79, float(rng.uniform(0, 0.8))])],
                     [(z + 1, [5, 5, 9, 9, float(rng.uniform(0, 0.5))])]]
    return evaluate_p3d(gt, dets)


def test_compressed_curve_reads_the_same():
    r = _result()
    x, y = compress_curve(r.curve_fps, r.curve_sens)
    assert x.size < r.curve_fps.size
    t = np.array([0.01, 0.125, 0.3, 0.5, 0.77, 1, 1.5, 2, 4, 16])
    for mode in ('extrapolate', 'clamp'):
        np.testing.assert_allclose(interp_sensitivity(x, y, t, mode),
                                   interp_sensitivity(r.curve_fps, r.curve_sens, t, mode))


def test_plot_from_results_and_dicts(tmp_path):
    r = _result()
    data = froc_plot_data(froc_to_dict(r))
    np.testing.assert_allclose(data['sensitivity'], r.sensitivity)
    assert data['ap'] == pytest.approx(r.ap)
    out = tmp_path / 'froc.png'
    plot_froc({'ours': r, 'again (dict)': froc_to_dict(_result(1))}, str(out),
              reference={'paper': [[0.125, 0.25, 0.5, 1, 2, 4, 8],
                                   [0.1986, 0.2711, 0.3621, 0.4682, 0.5689, 0.6682, 0.7473]]})
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 5000
    assert os.listdir(tmp_path) == ['froc.png']  # atomic write left no temp file
    with pytest.raises(ValueError):
        plot_froc({}, str(out))
    with pytest.raises(TypeError):
        froc_plot_data([1, 2])
