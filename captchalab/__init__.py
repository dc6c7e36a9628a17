"""captchalab: a CAPTCHA robustness testbed around the seed's deep LeNet network."""
import os

__version__ = "0.1.0"

# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX512-VNNI, -BF16 or AMX;
# on an AVX2-only machine they train the seed's network and ctc's CRNN 1.4-1.5x faster and read
# 1.4-1.7x faster (benchmarks/train_speed.py --onednn). Read once, when TensorFlow loads: so here,
# before any of our modules imports it. A user's own setting wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
