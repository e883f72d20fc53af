"""2D slice detections -> 3D proposals (Kalman stacking, SPEC 2.4); numpy/scipy/filterpy only."""
from .kalman_box_tracker import KalmanBoxTracker, box_to_measurement, state_to_box
from .stacker import Tracklet, box_iou_matrix, stack_volume, stack_volumes, tracklets_to_lh

__all__ = [
    'KalmanBoxTracker', 'box_to_measurement', 'state_to_box', 'Tracklet', 'stack_volume',
    'stack_volumes', 'tracklets_to_lh', 'box_iou_matrix'
]
