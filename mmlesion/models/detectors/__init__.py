from .lesion_centernet import LesionCenterNet

__all__ = ['LesionCenterNet']
