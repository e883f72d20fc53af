import numpy as np
import pytest
from filterpy.kalman import KalmanFilter

from mmlesion.stacking.kalman_box_tracker import KalmanBoxTracker, box_to_measurement, state_to_box


def test_box_measurement_round_trip():
    box = np.array([10.0, 20.0, 50.0, 40.0])
    meas = box_to_measurement(box)
    np.testing.assert_allclose(meas, [30, 30, 800, 2.0])
    np.testing.assert_allclose(state_to_box(meas), box)


def test_stationary_box_stays_put():
    trk = KalmanBoxTracker([10, 10, 50, 40])
    assert isinstance(trk.kf, KalmanFilter)
    for _ in range(5):
        np.testing.assert_allclose(trk.predict(), [10, 10, 50, 40], atol=1e-9)
        trk.update([10, 10, 50, 40])
    np.testing.assert_allclose(trk.box, [10, 10, 50, 40], atol=1e-9)


def test_constant_drift_is_learned():
    trk = KalmanBoxTracker([0, 0, 40, 40])
    for k in range(1, 10):
        trk.predict()
        trk.update([3 * k, 0, 40 + 3 * k, 40])
    pred = trk.predict()  # slice 10: the box should be near x = 30
    zero_velocity_error = 3.0
    assert abs(pred[0] - 30.0) < 0.2 * zero_velocity_error
    assert abs(pred[2] - 70.0) < 0.2 * zero_velocity_error
    assert trk.n_updates == 10


def test_noise_scales_with_box_size():
    small, big = KalmanBoxTracker([0, 0, 10, 10]), KalmanBoxTracker([0, 0, 100, 100])
    # centre std is 5 % of the box size: variance ratio (100/10)^2
    assert big.kf.R[0, 0] / small.kf.R[0, 0] == pytest.approx(100.0)
