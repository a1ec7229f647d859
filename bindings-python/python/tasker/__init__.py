"""tasker: see what a data pipeline is doing (skeleton)."""
from ._tasker import __version__

__all__ = ["__version__"]
