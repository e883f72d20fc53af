from .checkpoint import (
    OWN_CHECKPOINTS,
    OwnCheckpoints,
    UntrustedCheckpointError,
    install_checkpoint_loader,
    is_trusted,
    load_local_checkpoint,
    publish_checkpoint,
    trust_checkpoint_dir,
    trusted_dirs,
)
from .launch import prepare_distributed, shutdown_distributed
from .memory_format import MemoryFormatHook, to_memory_format
from .own_checkpoints_hook import RecordOwnCheckpointsHook

__all__ = [
    'UntrustedCheckpointError', 'install_checkpoint_loader', 'is_trusted', 'load_local_checkpoint',
    'publish_checkpoint', 'trust_checkpoint_dir', 'trusted_dirs', 'prepare_distributed',
    'shutdown_distributed', 'MemoryFormatHook', 'to_memory_format', 'OWN_CHECKPOINTS',
    'OwnCheckpoints', 'RecordOwnCheckpointsHook'
]
from .volume_scan import VolumeScanTestLoop  # noqa: E402

__all__ += ['VolumeScanTestLoop']
