"""Studies: study files, the cell engine and its backends, sweep and matrix."""
