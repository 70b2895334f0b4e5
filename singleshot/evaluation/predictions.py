"""The predictions JSON format shared by ``singleshot detect`` and ``singleshot eval``.

``{"<image path relative to the data root>": [[x1, y1, x2, y2, score, label?], ...], ...}``: boxes in absolute
pixels of the original image, ``label`` optional (default 1, the first foreground class); a model with landmarks
writes ``[x1, y1, x2, y2, score, label, lx1, ly1, ..., lx5, ly5]`` (points in the same pixels; left eye, right eye,
nose, left and right mouth corner). ``singleshot detect`` also writes ``"@classes": ["background", "head", ...]``
first, the model's class names (``label`` indexes them); readers skip it. See docs/formats.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from singleshot.atomic import write_text
from singleshot.data.formats.base import DataError

#: The entry holding the model's class names (not an image: no image key starts with "@").
CLASSES_KEY = "@classes"


def parse_predictions(data: object, source: str) -> dict[str, np.ndarray]:
    """Validate decoded JSON into ``{key: (K, 6) float64 [x1, y1, x2, y2, score, label]}`` (``(K, 6 + 2L)`` when the
    rows carry landmarks; every row of a file the same length)."""
    if not isinstance(data, dict):
        raise DataError(f"{source}: expected a JSON object mapping image paths to lists of boxes")
    out: dict[str, np.ndarray] = {}
    for key, rows in data.items():
        if key == CLASSES_KEY:
            if not isinstance(rows, list) or not all(isinstance(n, str) for n in rows):
                raise DataError(f"{source}: {CLASSES_KEY!r}: expected a list of class names, got {rows!r}"[:300])
            continue
        if not isinstance(rows, list):
            raise DataError(f"{source}: entry {key!r}: expected a list of [x1, y1, x2, y2, score, label?] rows")
        width = max([6] + [len(r) for r in rows if isinstance(r, (list, tuple))])
        table = np.zeros((len(rows), width), dtype=np.float64)
        table[:, 5] = 1
        for i, row in enumerate(rows):
            if not isinstance(row, (list, tuple)) or not (len(row) in (5, 6) or (len(row) - 6) % 2 == 0 < len(row) - 6):
                raise DataError(f"{source}: entry {key!r}, row {i}: expected 5 or 6 numbers (and landmark x, y pairs), "
                                f"got {row!r}")
            if len(row) > 6 and len(row) != width:
                raise DataError(f"{source}: entry {key!r}, row {i}: {len(row)} numbers where other rows have {width}")
            try:
                table[i, : len(row)] = [float(v) for v in row]
            except (TypeError, ValueError):
                raise DataError(f"{source}: entry {key!r}, row {i}: not numbers: {row!r}") from None
        out[key.replace("\\", "/")] = table
    return out


def read_class_names(path: str | Path) -> list[str] | None:
    """The class names a predictions JSON file carries (``"@classes"``), or None."""
    try:
        names = json.loads(Path(path).read_text()).get(CLASSES_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    return names if isinstance(names, list) and all(isinstance(n, str) for n in names) else None


def read_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """Read a predictions JSON file (see the module docstring); a one-line :class:`DataError` if malformed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: predictions file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    return parse_predictions(data, str(path))


def write_predictions(path: str | Path, predictions: dict[str, np.ndarray],
                      class_names: list[str] | None = None) -> None:
    """Write ``{key: (K, 5 or more) array}`` as a predictions JSON file, atomically: two runs writing one file leave
    one of the two complete, never a torn mix. Pixels are rounded to 1/1000; scores keep 6 decimals, because scores
    rounded to 3 tie by the hundred near 1 and ties change the ranking, hence the AP read back. ``class_names``
    (index 0 background) go first, under ``"@classes"``, so the labels can be read without the model."""
    data: dict = {CLASSES_KEY: list(class_names)} if class_names else {}
    data.update({key: [[round(float(v), 6 if i == 4 else 3) for i, v in enumerate(row)] for row in np.asarray(rows)]
                 for key, rows in predictions.items()})
    write_text(path, json.dumps(data, indent=1))


def load_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """Predictions from a predictions JSON file (:func:`read_predictions`) or a WIDER FACE submission folder."""
    path = Path(path)
    if path.is_dir():
        from singleshot.evaluation.widerface import read_wider_submission

        return read_wider_submission(path)
    return read_predictions(path)
