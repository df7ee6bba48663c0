"""Figures: image grids, training curves, attention maps and weight images."""
