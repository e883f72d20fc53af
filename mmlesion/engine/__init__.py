from .checkpoint import (
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

__all__ = [
    'UntrustedCheckpointError', 'install_checkpoint_loader', 'is_trusted', 'load_local_checkpoint',
    'publish_checkpoint', 'trust_checkpoint_dir', 'trusted_dirs', 'prepare_distributed',
    'shutdown_distributed', 'MemoryFormatHook', 'to_memory_format'
]
from .volume_scan import VolumeScanTestLoop  # noqa: E402

__all__ += ['VolumeScanTestLoop']
