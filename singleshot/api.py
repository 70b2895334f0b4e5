"""The Python twins of the CLI verbs: ``train``, ``evaluate``, ``export``, ``detect`` (``singleshot
train|eval|export|detect``).

Each takes what its verb takes, as keyword arguments, and returns what the verb prints, as an object.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def train(config: str | Path | None = None, overrides: Sequence[str] = (), *, out: str | Path | None = None,
          resume: str | Path | None = None, progress: bool = True):
    """``singleshot train CONFIG --set K=V ... [--out DIR] [--resume CKPT]``: returns the final ``TrainState``."""
    from singleshot.config import load_config
    from singleshot.engine.state import resume_config
    from singleshot.engine.trainer import Trainer

    cfg = resume_config(resume, config, list(overrides)) if resume is not None else load_config(config, list(overrides))
    if out is not None:
        cfg.train.out_dir = str(out)
    return Trainer(cfg, progress=progress).fit(resume=resume)


def evaluate(data: str, *, weights: str | Path | None = None, predictions: str | Path | dict | None = None,
             protocol: str | None = None, data_options: dict[str, Any] | None = None, input_size: int = 640,
             min_score: float = 0.02, max_overlap: float = 0.45, top_k: int = 200, runtime: str | None = None,
             threads: int | None = None, box_vote: bool = True, large_face_pass: bool | str = "auto", progress: bool = True,
             **protocol_options):
    """``singleshot eval --data FORMAT:PATH (--weights W | --predictions P)``: returns the ``EvalResult``.

    ``predictions`` may be a predictions JSON file, a WIDER FACE submission folder or a ``{key: (K, 6) rows}`` dict;
    ``weights`` runs a checkpoint or ONNX file over every image first (:func:`singleshot.inference.predict_dataset`).
    """
    from singleshot.data.formats import load_annotations
    from singleshot.errors import SingleshotError
    from singleshot.evaluation import evaluate as score

    if (weights is None) == (predictions is None):
        raise SingleshotError("give either weights (run a model) or predictions (saved predictions)")
    annotations = load_annotations(data, **(data_options or {}))
    if weights is not None:
        from singleshot.inference import predict_dataset
        from singleshot.predictor import Detector

        detector = Detector(weights, input_size=input_size, threads=threads, runtime=runtime, box_vote=box_vote,
                            large_face_pass=large_face_pass)
        predictions, _ = predict_dataset(
            lambda images: detector.detect(images, min_score=min_score, max_overlap=max_overlap, top_k=top_k),
            annotations, batch_size=1, progress=progress,
        )
    elif not isinstance(predictions, dict):
        from singleshot.evaluation.predictions import load_predictions

        predictions = load_predictions(predictions)
    return score(annotations, predictions, protocol=protocol, **protocol_options)


def export(weights: str | Path, out: str | Path, **options):
    """``singleshot export --weights W --out FILE [--frame WxH] [--dynamic] [--int8 --calib DIR]``: returns the
    :class:`~singleshot.deploy.export.ExportReport` (options as :func:`singleshot.deploy.export.export_model`)."""
    from singleshot.deploy.export import export_model

    return export_model(weights, out, **options)


def detect(sources, out: str | Path = "detections", *, engine: str = "local", **options):
    """``singleshot detect PATH... [--engine ray [--ray-address ADDR] [--workers N]] [--format parquet]`` on image
    files and folders: writes ``detections.json`` (or Parquet shards) to ``out`` and returns the
    :class:`~singleshot.batch.BatchReport`. Detections only: drawn copies, attributes and videos are the CLI's
    local engine's. Options as :func:`singleshot.batch.detect_batch` (``weights``, ``runtime``, ``min_score``,
    ``ray_address``, ``workers``, ``fmt``, ...)."""
    from singleshot.batch import detect_batch

    return detect_batch(sources, out, engine=engine, **options)
