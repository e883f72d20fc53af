"""Data pipeline transforms for multi-slice (2.5D) DeepLesion inputs, registered in
``mmdet.registry.TRANSFORMS``."""
from .crop import RandomLesionCrop
from .formatting import PackLesionInputs
from .geometric import RescaleToSpacing
from .loading import LoadLesionAnnotations, LoadMultiSliceFromFile

__all__ = [
    'LoadMultiSliceFromFile', 'LoadLesionAnnotations', 'RescaleToSpacing', 'RandomLesionCrop',
    'PackLesionInputs'
]
