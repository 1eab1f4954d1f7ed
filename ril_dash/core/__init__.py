"""Numerical core: volumes, orientation, windowing, image encoding (numpy, scipy, nibabel only)."""
