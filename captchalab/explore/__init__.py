"""`captchalab explore`: the local web app (server.py and the static page in static/)."""
