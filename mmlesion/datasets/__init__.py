from .deeplesion import DeepLesionDataset
from .slice_sampling import (InterpolationPlan, blend_slices, channel_groups, interpolation_plan,
                             raw_to_hu, sample_positions, window_hu)
from .transforms import *  # noqa: F401,F403
from .volume_reader import VolumeReader, read_uint16_png

__all__ = [
    'DeepLesionDataset', 'VolumeReader', 'read_uint16_png', 'raw_to_hu', 'window_hu',
    'sample_positions', 'interpolation_plan', 'InterpolationPlan', 'blend_slices', 'channel_groups'
]
