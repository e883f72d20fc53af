"""Writing matplotlib figures: one place for the layout, the PNG encoding and the atomic write."""
import io

from mmlesion.utils import atomic_write_bytes

__all__ = ['save_figure_png']


def save_figure_png(fig, path: str) -> None:
    """Lay ``fig`` out tightly, write it to ``path`` as PNG (atomically) and close it."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png')
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
