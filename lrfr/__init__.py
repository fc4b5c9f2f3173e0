"""lrfr: models, losses, datasets and protocols for reproducing low-resolution face recognition papers."""

__version__ = "0.1.0"
