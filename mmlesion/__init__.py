"""mmlesion: universal lesion detection and lesion harvesting on DeepLesion, as an MMDetection 3.x
plugin.

``import mmlesion`` registers every component into mmdet's registries (``custom_imports`` in
configs) and installs the checkpoint loader that keeps resume working under torch's weights-only
loading.  That loader replaces mmengine's loader for local paths in the whole process (mmengine
keeps its loaders in a class attribute and has no per-Runner choice); ``mmlesion.engine.checkpoint``
says what it changes and how to undo it.
"""
from .engine import install_checkpoint_loader
from .version import __version__

install_checkpoint_loader()

# the submodules register their components on import
from . import apis, datasets, evaluation, models, stacking, structures, visualization  # noqa: E402,F401

__all__ = ['__version__']
