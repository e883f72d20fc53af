"""Changing the length of a training config's schedule."""
from mmengine.config import Config

__all__ = ['retime_epochs', 'without_validation']


def retime_epochs(cfg: Config, epochs: int) -> None:
    """Set ``train_cfg.max_epochs`` to ``epochs`` and move the end of every epoch-based
    scheduler that ended with the old schedule (a cosine must reach its ``eta_min`` when training
    ends), in place."""
    old = cfg.train_cfg.get('max_epochs')
    cfg.train_cfg.max_epochs = int(epochs)
    for sched in cfg.get('param_scheduler') or []:
        if sched.get('by_epoch', True) and sched.get('end') == old:
            sched['end'] = int(epochs)
    if cfg.train_cfg.get('val_interval') == old:
        cfg.train_cfg.val_interval = int(epochs)


def without_validation(cfg: Config) -> None:
    """No validation during training (a caller tests once afterwards), and no best-checkpoint
    rule that needs it, in place."""
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.train_cfg.pop('val_interval', None)
    cfg.train_cfg.pop('val_begin', None)
    ckpt = cfg.get('default_hooks', {}).get('checkpoint', {})
    if ckpt.get('save_best'):
        ckpt.pop('save_best')
        ckpt.pop('rule', None)
