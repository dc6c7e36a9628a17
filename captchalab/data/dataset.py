"""Datasets: generate them from a style (generate.py), read dataset folders back safely
(folders.py), and `Source`, the one way the rest of the house gets CAPTCHAs (sources.py). This
module is the import path docs/ shows for all three."""

from .folders import (
    HIDDEN_PARTS,
    IMAGE_SUFFIXES,
    Dataset,
    file_hashes,
    part_name,
    read_dataset,
    read_unlabelled,
    safe_member,
    write_labels,
)
from .generate import (
    MAX_LENGTH,
    Drawn,
    GenerationSpec,
    generate_dataset,
    make_spec,
    parse_length,
    png_bytes,
    render_many,
    render_one,
)
from .sources import FolderPart, FolderSource, GeneratedSource, Sample, Source, make_source
