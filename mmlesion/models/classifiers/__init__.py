"""Lesion proposal classifiers (LPC, docs/method.md#lpc), registered in mmdet's MODELS."""
from .base_lpc import BaseLPC
from .lpc3d import LPC3D
from .multiview_lpc import AxialLPC, MultiViewLPC

__all__ = ['BaseLPC', 'MultiViewLPC', 'AxialLPC', 'LPC3D']
