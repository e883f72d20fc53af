from .montage import input_to_display, multislice_row, save_montage

__all__ = ['input_to_display', 'multislice_row', 'save_montage']
from .curves import plot_loss_curves, read_scalars  # noqa: E402

__all__ += ['plot_loss_curves', 'read_scalars']
from .overlays import KeySliceOverlayHook, render_volume_overlay, save_volume_overlay  # noqa: E402

__all__ += ['KeySliceOverlayHook', 'render_volume_overlay', 'save_volume_overlay']
from .froc import froc_plot_data, plot_froc, plot_pr  # noqa: E402

__all__ += ['froc_plot_data', 'plot_froc', 'plot_pr']
