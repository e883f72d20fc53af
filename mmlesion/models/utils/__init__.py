from .signed_gaussian_target import (
    draw_box_gaussians,
    gen_signed_gaussian_target,
    signed_gaussian_target,
)
from .torchvision_densenet import (
    convert_torchvision_densenet,
    load_torchvision_densenet,
    rename_legacy_densenet_key,
)

__all__ = [
    'draw_box_gaussians', 'signed_gaussian_target',
    'gen_signed_gaussian_target', 'convert_torchvision_densenet',
    'load_torchvision_densenet', 'rename_legacy_densenet_key'
]
