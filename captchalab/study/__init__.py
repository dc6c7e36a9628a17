"""Experiment grids: study files, the grid engine and its backends, sweep and matrix."""
