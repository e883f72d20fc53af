"""The inference API: build a lesion detector and predict whole CT volumes (3D tracklets)."""
from .inference import (
    ArrayVolume,
    VolumePrediction,
    VolumePredictor,
    VolumeScanInputs,
    check_series_folders,
    fill_spacing,
    get_test_pipeline,
    init_lesion_detector,
    predict_volume,
    predict_volumes,
    split_test_pipeline,
)

__all__ = [
    'init_lesion_detector', 'predict_volume', 'predict_volumes', 'VolumePredictor',
    'VolumePrediction', 'VolumeScanInputs', 'ArrayVolume', 'split_test_pipeline',
    'get_test_pipeline', 'fill_spacing', 'check_series_folders'
]
