"""A pretrained COCO object detector, off the shelf: its weights (fetched once from a registry
package, verified and converted: weights.py), the TF.js graph they come as (tfjs.py), the network
and its decoding (nanodet.py), and the map from a CAPTCHA's prompt to a COCO class (coco.py).
The `detector` attacker (attackers/detector.py) reads image grids with it."""
