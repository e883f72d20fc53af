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

Two implementations of the same filter.  :class:`KalmanBoxTracker` is the readable one (filterpy,
8-state matrices).  The stacker runs :class:`ScalarBoxKalman`: ``F``, ``H``, ``Q``, ``R`` and the
initial ``P`` are all block-diagonal per coordinate, so the filter is exactly four independent
(position, velocity) filters and every entry of filterpy's 8x8 products is a product or a sum of
at most two non-zero terms.  Written out on Python floats in filterpy's order of operations, the
states, covariances and predicted boxes are bit-identical to :class:`KalmanBoxTracker` (checked in
tests/test_stacking/test_kalman_box_tracker.py) without 8x8 matrix products.
"""
import math

import numpy as np
from filterpy.kalman import KalmanFilter

__all__ = ['KalmanBoxTracker', 'ScalarBoxKalman', 'box_to_measurement', 'state_to_box']

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


_MEAS_STD, _PROC_STD, _INIT_VEL_STD = MEAS_STD.tolist(), PROC_STD.tolist(), INIT_VEL_STD.tolist()


class ScalarBoxKalman:
    """:class:`KalmanBoxTracker` as four 2-state filters on Python floats (same numbers).

    Per coordinate ``c`` of ``[cx, cy, a, r]`` the state is ``[pos, vel]`` with covariance
    ``[[p11, p12], [p21, p22]]`` (filterpy's ``P[c, c], P[c, c+4], P[c+4, c], P[c+4, c+4]``; the
    two off-diagonal entries are kept apart because filterpy's Joseph-form update does not keep
    ``P`` exactly symmetric).  Each line below is the entry of filterpy's matrix expression with
    its zero terms dropped; products and the order of the two-term sums follow the BLAS
    evaluation of ``dot(dot(I_KH, P), I_KH.T) + dot(dot(K, R), K.T)``.

    Args:
        box: ``(>=4,)`` first detection ``[x1, y1, x2, y2, ...]`` (continuous corners, px).
    """
    __slots__ = ('coords', )

    def __init__(self, box):
        cx, cy, a, r = box_to_measurement_floats(box)
        size = math.sqrt(a)
        coords = []
        for c, (pos, scale) in enumerate(((cx, size), (cy, size), (a, a), (r, r))):
            # squares as x * x: numpy's ``** 2`` is np.square (libm's pow may round differently)
            std_meas, std_pos = _MEAS_STD[c] * scale, _PROC_STD[c] * scale
            std_vel, std_init = _PROC_STD[c + 4] * scale, _INIT_VEL_STD[c] * scale
            var_meas, q_pos = std_meas * std_meas, std_pos * std_pos
            q_vel, p_vel = std_vel * std_vel, std_init * std_init
            # [pos, vel, p11, p12, p21, p22, R, Q_pos, Q_vel]
            coords.append([pos, 0.0, var_meas, 0.0, 0.0, p_vel, var_meas, q_pos, q_vel])
        self.coords = coords

    def predict(self):
        """Advance one slice; returns the predicted ``(x1, y1, x2, y2)`` as floats."""
        for s in self.coords:
            pos, vel, p11, p12, p21, p22, _, q_pos, q_vel = s
            s[0] = pos + vel  # F x
            fp12 = p12 + p22  # F P, then (F P) F^T + Q
            s[2] = ((p11 + p21) + fp12) + q_pos
            s[3] = fp12
            s[4] = p21 + p22
            s[5] = p22 + q_vel
        return _state_to_box_floats(self.coords[0][0], self.coords[1][0], self.coords[2][0],
                                    self.coords[3][0])

    def update(self, box) -> None:
        """Correct the state with the detection ``box`` on the current slice."""
        for s, meas in zip(self.coords, box_to_measurement_floats(box)):
            pos, vel, p11, p12, p21, p22, var_meas, _, _ = s
            resid = meas - pos
            s_inv = 1.0 / (p11 + var_meas)  # inv(H P H^T + R), a diagonal matrix
            k1, k2 = p11 * s_inv, p21 * s_inv  # K = P H^T S^-1
            s[0] = pos + k1 * resid
            s[1] = vel + k2 * resid
            a, b = 1.0 - k1, -k2  # I - K H
            a11, a12 = a * p11, a * p12  # (I - K H) P
            a21, a22 = b * p11 + p21, b * p12 + p22
            k1r, k2r = k1 * var_meas, k2 * var_meas  # K R
            s[2] = a11 * a + k1r * k1
            s[3] = (a11 * b + a12) + k1r * k2
            s[4] = a21 * a + k2r * k1
            s[5] = (a21 * b + a22) + k2r * k2

    @property
    def box(self):
        """Current estimate ``(x1, y1, x2, y2)`` as floats."""
        return _state_to_box_floats(*(s[0] for s in self.coords))


def box_to_measurement_floats(box):
    """:func:`box_to_measurement` as a tuple of Python floats (same values)."""
    x1, y1, x2, y2 = box[0], box[1], box[2], box[3]
    w, h = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
    return x1 + w / 2.0, y1 + h / 2.0, w * h, w / h


def _state_to_box_floats(cx, cy, a, r):
    a, r = max(a, 1e-6), max(r, 1e-6)
    w = math.sqrt(a * r)
    h = a / w
    return cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0
