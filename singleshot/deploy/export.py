"""``export_model``: a checkpoint -> a deployable file (the pipeline behind ``singleshot export``).

``.pt``: weights only (:func:`singleshot.checkpoint.export_weights`). ``.onnx``: the graph with decoding inside
(:func:`singleshot.deploy.onnx_export.export_onnx`), checked against PyTorch on ONNX Runtime, optionally quantised to
int8 (:func:`singleshot.deploy.quantize.quantize_int8`) with the fp32 file kept beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from singleshot.checkpoint import (
    build_model_from_checkpoint,
    checkpoint_vote_iou,
    export_weights,
    load_checkpoint,
    override_vote_iou,
)
from singleshot.deploy.onnx_export import ExportError, compare_with_torch, export_onnx


@dataclass
class ExportReport:
    """What was written and how the ONNX graph compared with PyTorch (ONNX exports only)."""

    path: Path
    fp32_path: Path | None = None  # the fp32 graph (the same file unless int8)
    input_hw: tuple[int, int] | None = None  # fixed input (None: dynamic)
    check_hw: tuple[int, int] | None = None  # input size of the check
    box_diff_px: float | None = None
    score_diff: float | None = None
    same_detections: bool | None = None

    @property
    def ok(self) -> bool:
        """The ONNX graph matches PyTorch (always True for weights-only exports)."""
        return self.same_detections is None or (self.same_detections and (self.box_diff_px or 0.0) < 1e-3)


def export_model(
    weights: str | Path,
    out: str | Path,
    *,
    frame_hw: tuple[int, int] = (480, 640),
    dynamic: bool = False,
    opset: int = 17,
    box_vote: float | str | None = None,
    int8: bool = False,
    calib: str | Path | None = None,
    calib_images: int = 64,
) -> ExportReport:
    """Write a checkpoint as ``out``: ``.pt`` (weights only) or ``.onnx``.

    Args:
        frame_hw: ``(H, W)`` of a fixed ONNX input, rounded up to multiples of 32 (a 640x480 frame runs unpadded);
            with ``dynamic`` only the size traced.
        dynamic: ONNX with free batch, height and width.
        box_vote: the box voting the exported model recommends: None keeps the checkpoint's, ``"off"``, or an IoU.
        int8: static int8 (QDQ) quantisation calibrated on the photos of ``calib``; ``out`` is the int8 file and
            ``OUT.fp32.onnx`` the float graph.

    Raises:
        ExportError: an impossible combination (e.g. int8 to .pt) or a file type other than .pt / .onnx;
        CheckpointError, QuantizeError: as their modules say.
    """
    target = Path(out)
    if target.suffix == ".pt":
        if int8 or dynamic:
            raise ExportError("int8 and dynamic apply to ONNX exports (an output file ending in .onnx)")
        return ExportReport(export_weights(weights, target, vote_iou=box_vote))
    if target.suffix != ".onnx":
        raise ExportError(f"{target}: export writes .pt (weights only) or .onnx files")
    if int8 and not calib:
        raise ExportError("int8 needs a folder of calibration photos (--calib DIR)")
    size = tuple(int(v) + (-int(v) % 32) for v in frame_hw)  # as export_onnx rounds it
    checkpoint = load_checkpoint(weights)
    model = build_model_from_checkpoint(checkpoint, str(weights)).eval()
    mean, std = tuple(checkpoint["mean_rgb"]), tuple(checkpoint["std_rgb"])
    fp32 = target if not int8 else target.with_name(target.stem + ".fp32.onnx")
    export_onnx(model, fp32, list(checkpoint["class_names"]), mean, std, input_size=size, dynamic=dynamic, opset=opset,
                model_name=str(checkpoint.get("model_name", "")),
                vote_iou=override_vote_iou(checkpoint_vote_iou(checkpoint), box_vote))
    # the check runs on a second input size when the graph allows it
    check = (size[0] + 64, size[1] - 64) if dynamic and size[1] > 96 else size
    box_diff, score_diff, same = compare_with_torch(model, fp32, mean, std, check)
    if int8:
        from singleshot.deploy.quantize import quantize_int8

        quantize_int8(fp32, target, calib, size_hw=size, mean_rgb=mean, limit=calib_images)
    return ExportReport(target, fp32, None if dynamic else size, check, box_diff, score_diff, same)
