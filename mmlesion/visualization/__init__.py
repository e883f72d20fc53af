from .montage import input_to_display, multislice_row, save_montage

__all__ = ['input_to_display', 'multislice_row', 'save_montage']
