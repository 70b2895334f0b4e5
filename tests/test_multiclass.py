"""Two classes through the user's path: a VOC-layout set, `singleshot train`, `eval` (per-class VOC AP, COCO AP,
PR curves), `export` to ONNX and `detect` with class names, on tiny synthetic photos (red and blue squares)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from singleshot.boxes import pairwise_iou_xyxy
from singleshot.cli import main
from singleshot.data.formats import load_annotations

SIZE = 96
CLASSES = {"red": (220, 30, 30), "blue": (30, 30, 220)}  # RGB


def _voc(root: Path, n_images: int = 24) -> None:
    """VOC2007 layout: JPEGImages, Annotations (one XML per photo, 1-3 squares each), ImageSets/Main/{train,val}."""
    rng = np.random.default_rng(0)
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    ids = []
    for i in range(n_images):
        image = rng.integers(90, 160, (SIZE, SIZE, 3)).astype(np.uint8)
        objects = []
        for j in range(1 + i % 3):
            side = int(rng.integers(22, 36))
            x1, y1 = j * 30 + int(rng.integers(0, 6)), int(rng.integers(0, SIZE - side))
            x1 = min(x1, SIZE - side)
            name = "red" if (i + j) % 2 == 0 else "blue"
            image[y1 : y1 + side, x1 : x1 + side] = CLASSES[name]
            objects.append(f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin>"
                           f"<ymin>{y1}</ymin><xmax>{x1 + side}</xmax><ymax>{y1 + side}</ymax></bndbox></object>")
        ident = f"{i:06d}"
        ids.append(ident)
        cv2.imwrite(str(root / "JPEGImages" / f"{ident}.jpg"), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        (root / "Annotations" / f"{ident}.xml").write_text(
            f"<annotation><filename>{ident}.jpg</filename><size><width>{SIZE}</width><height>{SIZE}</height>"
            f"<depth>3</depth></size>{''.join(objects)}</annotation>")
    (root / "ImageSets/Main/train.txt").write_text("\n".join(ids[:18]) + "\n")
    (root / "ImageSets/Main/val.txt").write_text("\n".join(ids[18:]) + "\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multiclass")
    root = tmp / "VOC2007"
    _voc(root)
    config = tmp / "two.yaml"
    config.write_text(f"""
model: {{name: face_slim, num_classes: 3, options: {{width: 0.25}}}}
data:
  train: [{{spec: "voc:{root}", options: {{split: train}}}}]
  val: {{spec: "voc:{root}", options: {{split: train, hold_out: 0.3, take: held_out}}}}
  input_size: [{SIZE}, {SIZE}]
  cache_dir: {tmp / 'cache'}
  cache_max_side: {SIZE}
  augment: {{zoom_out_p: 0.0, crop: false, photometric: false}}
train: {{epochs: 60, batch_size: 6, lr: 0.05, warmup_iters: 10, out_dir: {tmp / 'run'}, threads: 2,
        checkpoint_every: 1000, match_iou: 0.35}}
eval: {{protocol: voc, min_score: 0.02, long_side: {SIZE}, every_epochs: 60}}
""")
    assert main(["train", str(config), "--no-progress"]) == 0
    return root, tmp


def test_two_classes_train_and_evaluate_per_class(trained, capsys):
    root, tmp = trained
    capsys.readouterr()
    data = ["--data", f"voc:{root}", "--data-option", "split=val", "--input-size", str(SIZE)]
    assert main(["eval", "--weights", str(tmp / "run" / "last.pt"), *data, "--json", "--plot", str(tmp / "pr.png")]) == 0
    voc = json.loads(capsys.readouterr().out)["metrics"]
    assert {"AP/blue", "AP/red"} <= set(voc) and voc["mAP"] > 0.7, voc
    assert (tmp / "pr.png").stat().st_size > 0
    assert main(["eval", "--weights", str(tmp / "run" / "last.pt"), *data, "--protocol", "coco", "--json"]) == 0
    coco = json.loads(capsys.readouterr().out)["metrics"]
    assert 0 < coco["AP"] <= voc["mAP"], coco  # AP@[.5:.95] is at most AP@.5


def test_two_classes_export_and_detect_with_names(trained, tmp_path, capsys):
    root, tmp = trained
    onnx = tmp_path / "two.onnx"
    assert main(["export", "--weights", str(tmp / "run" / "last.pt"), "--out", str(onnx), "--dynamic"]) == 0
    image = root / "JPEGImages" / "000019.jpg"
    out = tmp_path / "out"
    assert main(["detect", str(image), "--weights", str(onnx), "--input-size", str(SIZE), "--min-score", "0.3",
                 "--out", str(out), "--no-progress"]) == 0
    detections = json.loads((out / "detections.json").read_text())
    names = detections.pop("@classes")
    assert names == ["background", "blue", "red"]
    rows = np.asarray(detections["000019.jpg"]).reshape(-1, 6)
    truth = next(s for s in load_annotations(f"voc:{root}").samples if s.key.endswith("000019.jpg"))


    iou = pairwise_iou_xyxy(torch.as_tensor(truth.boxes_xyxy), torch.as_tensor(rows[:, :4], dtype=torch.float32))
    for k, label in enumerate(truth.labels):  # every square is found, with its colour's name
        assert iou[k].max() > 0.5 and rows[int(iou[k].argmax()), 5] == label, (truth.boxes_xyxy, rows)
    assert (out / "000019.jpg").is_file()
