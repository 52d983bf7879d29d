"""Sampling: checkpoints (read weights-only), latents, grids, truncation, style mixing,
interpolation, export and provenance. Knows no Lightning module."""
