"""partwise: part-level human activity understanding in images and video."""

__version__ = "0.1.0"
