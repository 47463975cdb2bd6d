"""Stage 1, data: the tiles checked, synthesised, split and read the same way in both languages.

Reads a dataset folder (``img_tiff/``, ``mask_tiff/``, ``img/``, ``mask/``; ``data/README.md``) or makes synthetic
tiles; writes a run's ``dataset_card.json`` and ``manifest.json`` (``parity/FORMATS.md``).
Modules: ``synthetic`` (seeded tiles), ``fixtures`` (broken files made by code), ``check`` (every file accounted
for, the dataset card), ``manifest`` (split, batch order, augmentation seeds, file hashes), ``compare`` (the R
reader against the Python reader, bit for bit), ``cli`` (``tailings-parity data``).
"""
