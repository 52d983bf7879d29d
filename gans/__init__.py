"""gans: recipe-driven GAN training on PyTorch Lightning."""

__version__ = "0.1.0"
