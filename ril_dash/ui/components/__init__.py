"""Reusable UI components, one per module."""
