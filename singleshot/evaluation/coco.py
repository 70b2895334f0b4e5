"""The COCO protocol: AP@[.50:.05:.95] and the other eleven COCO summary numbers, computed by ``pycocotools``.

Nothing of COCO's matching is re-implemented here: the annotations and predictions are converted to COCO
structures in memory and scored by ``pycocotools.cocoeval.COCOeval(gt, dt, "bbox")`` (``evaluate``,
``accumulate``, ``summarize``), so the numbers are those of the official API. Conversion:

* images get ids 1..N in data order (``file_name`` = the sample key); categories ids 1..C named
  ``class_names[1:]``; a ground-truth box ``[x1, y1, x2, y2]`` becomes ``bbox = [x1, y1, x2 - x1, y2 - y1]``
  (COCO boxes are continuous, no ``+1``), ``area`` = ``Sample.extra["area"]`` when the format kept it (COCO's
  area is the segment's), else ``w * h``;
* ignored ground truth (``Sample.ignore``: COCO ``iscrowd``, VOC ``difficult``, ...) becomes ``iscrowd=1``.
  COCOeval treats crowd regions as ignore regions: a detection matched to one (crowd IoU = intersection over
  the detection's area) is neither a true nor a false positive, and crowds are not counted as objects to find;
* detections become ``{"image_id", "category_id": label, "bbox": xywh, "score"}`` results (``COCO.loadRes``);
  COCOeval keeps the 100 highest-scoring per image and class (``maxDets``).

Metrics: ``AP`` (IoU .50:.05:.95), ``AP50``, ``AP75``, ``APs`` / ``APm`` / ``APl`` (area < 32^2, < 96^2, larger),
``AR1``, ``AR10``, ``AR100``, ``ARs``, ``ARm``, ``ARl``: ``COCOeval.stats`` in order; -1 where undefined (no
ground truth in that range). The curve is precision against recall at IoU 0.5 (all areas, 100 detections),
averaged over the classes that have ground truth, from ``COCOeval.eval["precision"]``.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from singleshot.evaluation.result import Curve, EvalResult
from singleshot.registry import EVAL_PROTOCOLS
from singleshot.structures import AnnotationSet

#: ``COCOeval.stats`` names, in order.
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def _xywh(boxes_xyxy: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def to_coco(data: AnnotationSet, predictions: dict[str, np.ndarray]) -> tuple[dict, list[dict], dict[str, int]]:
    """COCO ground truth (a dataset dict) and detection results (a list) for ``data`` and ``predictions``.

    Also returns counts: detections kept, detections with a label outside ``1..C``.
    """
    n_classes = len(data.class_names)
    images, annotations, results = [], [], []
    unknown_label = 0
    for image_id, sample in enumerate(data.samples, start=1):
        images.append(
            {"id": image_id, "file_name": sample.key, "width": sample.width or 0, "height": sample.height or 0}
        )
        xywh = _xywh(sample.boxes_xyxy)
        area = np.asarray(sample.extra.get("area", xywh[:, 2] * xywh[:, 3]), np.float64)
        for box, label, ignore, a in zip(xywh, sample.labels, sample.ignore, area):
            annotations.append({
                "id": len(annotations) + 1,  # COCOeval uses id 0 for "unmatched": ids start at 1
                "image_id": image_id, "category_id": int(label), "bbox": box.tolist(), "area": float(a),
                "iscrowd": int(bool(ignore)),
            })
        dets = np.asarray(predictions.get(sample.key, np.zeros((0, 6))), np.float64).reshape(-1, 6)
        labels = dets[:, 5]
        known = (labels >= 1) & (labels < n_classes) & (labels == np.round(labels))
        unknown_label += int((~known).sum())
        for box, score, label in zip(_xywh(dets[known, :4]), dets[known, 4], labels[known]):
            results.append({"image_id": image_id, "category_id": int(label), "bbox": box.tolist(), "score": float(score)})
    categories = [{"id": c, "name": data.class_names[c]} for c in range(1, n_classes)]
    gt = {"images": images, "annotations": annotations, "categories": categories}
    return gt, results, {"detections": len(results), "detections_with_unknown_label": unknown_label}


@EVAL_PROTOCOLS.register("coco")
def evaluate_coco(data: AnnotationSet, predictions: dict[str, np.ndarray]) -> EvalResult:
    """COCO box AP@[.5:.95] and the other summary numbers, by ``pycocotools`` (see the module docstring).

    Args:
        data: ground truth; ``Sample.ignore`` becomes COCO ``iscrowd``.
        predictions: ``{key: (K, 6) [x1, y1, x2, y2, score, label]}`` in pixels.

    Raises:
        RuntimeError: ``pycocotools`` is not installed.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise RuntimeError("COCO evaluation needs pycocotools: pip install 'singleshot[coco]'") from None
    gt_dict, results, counts = to_coco(data, predictions)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # pycocotools prints progress; keep only the summary below
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        if results:
            dt = gt.loadRes(results)
        else:  # loadRes fails on an empty list: an empty result set, built the same way
            dt = COCO()
            dt.dataset = {"images": gt_dict["images"], "categories": gt_dict["categories"], "annotations": []}
            dt.createIndex()
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        evaluator.summarize()
    metrics = {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats)}

    # precision: [T IoUs, R recall points, K classes, A area ranges, M maxDets]; IoU 0.5, all areas, 100 dets.
    precision = evaluator.eval["precision"][0, :, :, 0, -1]
    defined = precision > -1  # -1: the class has no ground truth
    curves = []
    if defined.any():
        mean = np.where(defined, precision, 0).sum(axis=1) / np.maximum(defined.sum(axis=1), 1)
        curves.append(Curve("AP50", np.asarray(evaluator.params.recThrs, np.float64), mean))
    details = {
        "iou_thresholds": "0.50:0.05:0.95",
        "max_detections": int(evaluator.params.maxDets[-1]),
        "images": len(gt_dict["images"]),
        "objects": sum(1 for a in gt_dict["annotations"] if not a["iscrowd"]),
        "crowd_or_ignored": sum(1 for a in gt_dict["annotations"] if a["iscrowd"]),
        **counts,
        "predictions_for_unknown_images": len(set(predictions) - {s.key for s in data.samples}),
        "summary": summary.getvalue().rstrip("\n").splitlines(),
    }
    return EvalResult(protocol="coco", metrics=metrics, curves=curves, details=details)
