"""COCO's 80 classes, in the detector's output order, and the map from a CAPTCHA's prompt to one
of them. A prompt is normalised first (case, underscores and hyphens, a plural), then looked up
among the class names and a short list of synonyms; a prompt no COCO class names (a crosswalk, a
chimney, a biscuit) maps to None: the detector cannot read it, and says so rather than guess."""

from __future__ import annotations

import re

CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip

# other names prompts use for a COCO class (each already normalised: lower case, singular)
SYNONYMS = {
    "hydrant": "fire hydrant",
    "motorbike": "motorcycle",
    "motor cycle": "motorcycle",
    "scooter": "motorcycle",
    "bike": "bicycle",
    "cycle": "bicycle",
    "taxi": "car",
    "cab": "car",
    "automobile": "car",
    "lorry": "truck",
    "coach": "bus",
    "school bus": "bus",
    "traffic signal": "traffic light",
    "stoplight": "traffic light",
    "aeroplane": "airplane",
    "plane": "airplane",
    "ship": "boat",
    "doughnut": "donut",
    "sofa": "couch",
    "television": "tv",
    "tv monitor": "tv",
    "mobile phone": "cell phone",
    "cellphone": "cell phone",
    "phone": "cell phone",
    "table": "dining table",
    "plant": "potted plant",
    "mug": "cup",
    "hair dryer": "hair drier",
    "fridge": "refrigerator",
    "puppy": "dog",
    "kitten": "cat",
}
# plurals that dropping a final "s" gets wrong
IRREGULAR = {"buses": "bus", "people": "person", "men": "person", "women": "person", "knives": "knife",
             "skis": "skis", "benches": "bench", "sandwiches": "sandwich", "boxes": "box", "glasses": "glass",
             "taxis": "taxi", "couches": "couch", "mice": "mouse"}  # fmt: skip


def normalise(prompt: str) -> str:
    """Lower case, words separated by one space (underscores and hyphens too)."""
    return re.sub(r"[\s_-]+", " ", prompt.strip().lower())


def singular(words: str) -> str:
    """The last word of a name in the singular (traffic lights -> traffic light)."""
    *head, last = words.split(" ") if words else [""]
    if last in IRREGULAR:
        last = IRREGULAR[last]
    elif last.endswith("ies") and len(last) > 4:
        last = last[:-3] + "y"
    elif last.endswith("s") and not last.endswith("ss") and len(last) > 2:
        last = last[:-1]
    return " ".join([*head, last])


def coco_class(prompt: str) -> str | None:
    """The COCO class a prompt names, or None when none does."""
    for name in dict.fromkeys((normalise(prompt), singular(normalise(prompt)))):
        if name in CLASSES:
            return name
        if name in SYNONYMS:
            return SYNONYMS[name]
    return None
