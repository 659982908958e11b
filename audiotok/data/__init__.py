"""Datasets: audio folders, manifests and standard corpus layouts; no model code."""
