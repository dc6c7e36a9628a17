"""Making CAPTCHAs: the generator interface, the drawing helpers, the adversarial wrapper."""
