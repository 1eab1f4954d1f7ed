"""Numerical core (numpy, scipy, nibabel only): volumes and orientation, windowing, image
encoding, the packed ROI bit masks with their slots and paint operations, rasterisation,
statistics and atomic file writes. It imports nothing else of ril_dash but its errors.
"""
