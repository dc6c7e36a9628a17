"""Data in and out: MNIST, rendered characters, dataset folders, safe image decoding."""
