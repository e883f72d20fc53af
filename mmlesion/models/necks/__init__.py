from .fpn_upsample import LesionFPNUpsample

__all__ = ['LesionFPNUpsample']
