"""Built-in CAPTCHA styles, one file each. Drop a new .py file here to add a style."""
