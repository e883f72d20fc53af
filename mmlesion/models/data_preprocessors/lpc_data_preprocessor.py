"""Batching and normalisation of lesion-proposal patches (the LPC's data preprocessor)."""
from typing import Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor

from mmdet.registry import MODELS

__all__ = ['LPCDataPreprocessor']


@MODELS.register_module()
class LPCDataPreprocessor(BaseDataPreprocessor):
    """Stack the patches of a batch, move them to the model's device and normalise them.

    Each sample's ``inputs`` is a tensor of the same shape (``V x 1 x H x W`` views or
    ``1 x D x H x W`` cubes, windowed to ``0..255`` by the dataset); the batch becomes
    ``(inputs - mean) / std`` in float32, ``data_samples`` pass through unchanged.

    Args:
        mean: subtracted (a number, or one value per channel, i.e. along dim 2 of a views batch
            ``B x V x C x H x W`` and dim 1 of a cube batch ``B x C x D x H x W``).
        std: divided by, same layout as ``mean``.
        non_blocking: as :class:`mmengine.model.BaseDataPreprocessor`.
    """

    def __init__(self, mean: Union[float, Sequence[float]] = 0.0,
                 std: Union[float, Sequence[float]] = 1.0,
                 non_blocking: Optional[bool] = False) -> None:
        super().__init__(non_blocking)
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if torch.any(std_t <= 0):
            raise ValueError(f'std must be positive, got {std!r}')
        self.register_buffer('mean', mean_t, persistent=False)
        self.register_buffer('std', std_t, persistent=False)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean.numel() == 1 and self.std.numel() == 1:
            return (x - self.mean) / self.std
        # one value per channel: the channel axis is dim 2 of B x V x C x H x W, else dim 1
        ch_dim = 2 if x.dim() == 5 and x.shape[2] == self.mean.numel() else 1
        shape = [1] * x.dim()
        shape[ch_dim] = -1
        return (x - self.mean.reshape(shape)) / self.std.reshape(shape)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            shapes = {tuple(t.shape) for t in inputs}
            if len(shapes) != 1:
                raise ValueError(f'LPC patches of one batch must have one shape, got {shapes}')
            inputs = torch.stack(list(inputs))
        return dict(inputs=self._normalise(inputs.float()),
                    data_samples=data.get('data_samples'))
