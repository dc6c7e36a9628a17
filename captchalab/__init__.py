"""captchalab: a CAPTCHA robustness testbed around the seed's deep LeNet network."""

from .runtime import use_onednn

__version__ = "0.1.0"

use_onednn()  # before any of our modules imports TensorFlow
