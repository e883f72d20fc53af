"""Constant-velocity Kalman filter on a 2D box, stepping one CT slice at a time (filterpy).

Written from the method description of Lesion Harvester (Sec. III-B2: stack 2D proposals of
consecutive slices with a Kalman filter-based box tracker, after Yang et al. 2019), not from
any tracker implementation.

State (8): ``[cx, cy, a, r, vcx, vcy, va, vr]`` -- box centre (px), area (px^2), aspect ratio
``w / h`` and their per-slice velocities.  Measurement (4): ``[cx, cy, a, r]`` of a detected box.
Boxes are ``[x1, y1, x2, y2]`` with continuous corners (``w = x2 - x1``), any pixel frame.

Noise model *(ours)*.  A lesion seen on adjacent axial slices moves and grows smoothly: its centre
shifts by a small fraction of its size per slice, its area changes more than its centre.  All
standard deviations are relative to the box that started the track (size ``L = sqrt(a0)``,
area ``a0``, aspect ``r0``), so the filter behaves the same for a 6 px nodule and a 150 px mass:

=====================  =======================  ==========================================
quantity               std (per slice)          why
=====================  =======================  ==========================================
measurement cx, cy     0.05 L                   detector localisation jitter
measurement a          0.10 a0                  box extent jitter (~5 % per side)
measurement r          0.05 r0
process cx, cy         0.01 L                   the state itself is nearly exact between
process a / r          0.02 a0 / 0.01 r0        updates; velocities carry the motion
process vcx, vcy       0.02 L                   drift may change slowly across slices
process va / vr        0.05 a0 / 0.02 r0        growth/shrinkage changes faster
initial vcx, vcy       0.10 L                   unknown drift at track birth
initial va / vr        0.20 a0 / 0.10 r0
=====================  =======================  ==========================================

Because the measurement noise is small relative to the initial uncertainty, the first updates
follow the detections closely; after a few slices the velocity estimate lets the predicted box
follow a steadily drifting or growing lesion, which matters with the strict 0.8 IoU gate.
"""
import numpy as np
from filterpy.kalman import KalmanFilter

__all__ = ['KalmanBoxTracker', 'box_to_measurement', 'state_to_box']

_DIM_X, _DIM_Z = 8, 4
_F = np.eye(_DIM_X)
_F[:4, 4:] = np.eye(4)  # constant velocity: x_{z+1} = x_z + v_z
_H = np.hstack([np.eye(4), np.zeros((4, 4))])

# relative standard deviations (see the module docstring)
MEAS_STD = np.array([0.05, 0.05, 0.10, 0.05])  # x (L, L, a0, r0)
PROC_STD = np.array([0.01, 0.01, 0.02, 0.01, 0.02, 0.02, 0.05, 0.02])
INIT_VEL_STD = np.array([0.10, 0.10, 0.20, 0.10])


def box_to_measurement(box) -> np.ndarray:
    """``[x1, y1, x2, y2]`` -> ``[cx, cy, area, aspect]`` (aspect = w / h)."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w, h = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
    return np.array([x1 + w / 2.0, y1 + h / 2.0, w * h, w / h])


def state_to_box(state) -> np.ndarray:
    """``[cx, cy, area, aspect, ...]`` -> ``[x1, y1, x2, y2]``; area/aspect floored at 1e-6."""
    cx, cy, a, r = (float(v) for v in np.ravel(state)[:4])
    a, r = max(a, 1e-6), max(r, 1e-6)
    w = np.sqrt(a * r)
    h = a / w
    return np.array([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0])


class KalmanBoxTracker:
    """One track: a filterpy ``KalmanFilter`` on a box, one step per slice.

    Args:
        box: ``(>=4,)`` first detection ``[x1, y1, x2, y2, ...]`` (continuous corners, px).
    """

    def __init__(self, box):
        meas = box_to_measurement(box)
        size = np.sqrt(meas[2])
        scale = np.array([size, size, meas[2], meas[3]])  # units of cx, cy, a, r
        kf = KalmanFilter(dim_x=_DIM_X, dim_z=_DIM_Z)
        kf.F = _F.copy()
        kf.H = _H.copy()
        kf.R = np.diag((MEAS_STD * scale) ** 2)
        kf.Q = np.diag((PROC_STD * np.concatenate([scale, scale])) ** 2)
        kf.P = np.diag(np.concatenate([(MEAS_STD * scale) ** 2, (INIT_VEL_STD * scale) ** 2]))
        kf.x = np.concatenate([meas, np.zeros(4)]).reshape(_DIM_X, 1)
        self.kf = kf
        self.n_updates = 1

    def predict(self) -> np.ndarray:
        """Advance one slice; returns the predicted ``[x1, y1, x2, y2]``."""
        self.kf.predict()
        return state_to_box(self.kf.x)

    def update(self, box) -> None:
        """Correct the state with the detection ``box`` on the current slice."""
        self.kf.update(box_to_measurement(box))
        self.n_updates += 1

    @property
    def box(self) -> np.ndarray:
        """Current estimate ``[x1, y1, x2, y2]``."""
        return state_to_box(self.kf.x)
