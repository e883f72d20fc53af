"""2D slice detections -> 3D proposals (Kalman stacking, docs/method.md#stacking).

numpy/scipy/filterpy only; the result type is :class:`mmlesion.structures.Tracklet`."""
from .kalman_box_tracker import KalmanBoxTracker, ScalarBoxKalman, box_to_measurement, state_to_box
from .stacker import stack_volume, stack_volumes, tracklets_to_lh

__all__ = [
    'KalmanBoxTracker', 'ScalarBoxKalman', 'box_to_measurement', 'state_to_box', 'stack_volume',
    'stack_volumes', 'tracklets_to_lh'
]
