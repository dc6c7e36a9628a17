"""captchalab: a CAPTCHA robustness testbed around the seed's deep LeNet network."""
__version__ = "0.1.0"
