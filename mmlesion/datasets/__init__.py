from .deeplesion import DeepLesionDataset
from .png_codec import PNG_HU_OFFSET, raw_to_hu, read_uint16_png
from .slice_sampling import (
    InterpolationPlan,
    apply_hu_window,
    blend_slices,
    channel_groups,
    interpolation_plan,
    sample_positions,
)
from .transforms import *  # noqa: F401,F403
from .volume_reader import VolumeReader

__all__ = [
    'DeepLesionDataset', 'VolumeReader', 'PNG_HU_OFFSET', 'read_uint16_png', 'raw_to_hu',
    'apply_hu_window', 'sample_positions', 'interpolation_plan', 'InterpolationPlan',
    'blend_slices', 'channel_groups'
]
from .lpc_dataset import ProposalPatchDataset  # noqa: E402,F401  (LPC dataset, transforms)
from .samplers import ProposalBalancedSampler  # noqa: E402,F401  (LPC training sampler)
