from .lpc_data_preprocessor import LPCDataPreprocessor

__all__ = ['LPCDataPreprocessor']
