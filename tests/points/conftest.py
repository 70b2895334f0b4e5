"""A tiny detection set whose faces carry five points: grey photos with one light square "face" each and its five
points drawn as dark dots, written in the csv format (``csv:DIR``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

#: The five points of a face in box units (left eye, right eye, nose, left and right mouth corner).
LAYOUT = np.array([[0.3, 0.35], [0.7, 0.35], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])


def write_point_set(folder: Path, photos: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    rows = ["image,width,height,x1,y1,x2,y2,label,ignore,lx1,ly1,lx2,ly2,lx3,ly3,lx4,ly4,lx5,ly5"]
    for n in range(photos):
        image = np.full((120, 160, 3), 60, np.uint8)
        side = rng.uniform(30, 60)
        x1, y1 = rng.uniform(5, 160 - side - 5), rng.uniform(5, 120 - side - 5)
        cv2.rectangle(image, (round(x1), round(y1)), (round(x1 + side), round(y1 + side)), (200, 180, 160), -1)
        points = np.array([x1, y1]) + LAYOUT * side
        for px, py in points:
            cv2.circle(image, (round(px), round(py)), max(1, round(side / 15)), (20, 20, 20), -1)
        name = f"p{n:02d}.png"
        cv2.imwrite(str(folder / "images" / name), image)
        cells = ",".join(f"{v:.2f}" for v in points.reshape(-1))
        rows.append(f"{name},160,120,{x1:.2f},{y1:.2f},{x1 + side:.2f},{y1 + side:.2f},face,0,{cells}")
    (folder / "boxes.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture
def point_set(tmp_path) -> Path:
    return write_point_set(tmp_path / "set")
