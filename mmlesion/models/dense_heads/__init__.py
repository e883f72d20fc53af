from .centernet_hnsl_head import CenterNetHNSLHead

__all__ = ['CenterNetHNSLHead']
