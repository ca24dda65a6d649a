"""AE and VAE models with one interface (see autoencoder.py)."""
from .autoencoder import Autoencoder
from .checkpoint import CheckpointError, read_metrics
from .config import ModelConfig
from .posterior import DiagonalGaussian, PointMass

__all__ = ["Autoencoder", "CheckpointError", "DiagonalGaussian", "ModelConfig", "PointMass", "read_metrics"]
