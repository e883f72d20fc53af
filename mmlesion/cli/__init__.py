"""Command-line entry points behind ``tools/*.py`` (argument parsing and orchestration).

The library API for inference lives in :mod:`mmlesion.apis`."""
