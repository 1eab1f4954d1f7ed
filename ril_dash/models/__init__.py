"""Keras model plugins: manifests, discovery, inference, explanations (not yet built)."""
