"""Distributed set-up that works on GPUs (NCCL) and on CPU-only machines (gloo).

mmengine 0.10.7's pytorch launcher calls ``torch.cuda.set_device`` unconditionally and wraps DDP
with ``device_ids=[LOCAL_RANK]``; both fail without CUDA.  On CPU we initialise the gloo process
group before the Runner is built (the Runner then skips its own initialisation) and wrap the model
with ``device_ids=None``.
"""
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def add_launcher_arguments(parser) -> None:
    """``--launcher`` and ``--local-rank`` as every mmdet tool accepts them."""
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='job launcher: none (one process; default), pytorch (torchrun, as '
                        'tools/dist_*.sh start it), slurm (tools/slurm_train.sh) or mpi')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help='set by the deprecated torch.distributed.launch (torchrun sets '
                        'LOCAL_RANK instead); not for typing')


def export_local_rank(args) -> None:
    """torchrun sets LOCAL_RANK; the deprecated launcher passes ``--local-rank`` instead."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)


def prepare_distributed(cfg: Config, launcher: str) -> None:
    """Make ``cfg`` and the process group ready for ``launcher``.

    ``launcher`` is one of ``LAUNCHERS``: 'none', 'pytorch', 'slurm', 'mpi'.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher == 'slurm':
        # torchrun-style variables from SLURM's so the same gloo path serves both launchers
        os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
        os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
        os.environ.setdefault('LOCAL_RANK', os.environ['SLURM_LOCALID'])
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:
            raise RuntimeError(
                'CPU slurm training needs MASTER_ADDR (tools/slurm_train.sh sets it)')
    if not torch_dist.is_initialized():
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', 1800)
        import datetime
        torch_dist.init_process_group(
            backend='gloo', timeout=datetime.timedelta(seconds=timeout))
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def shutdown_distributed() -> None:
    """Leave the process group cleanly once every rank is done.

    A rank that exits while its gloo threads still run aborts ("terminate called without an
    active exception", SIGABRT), and torchrun then reports the whole job as failed.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
