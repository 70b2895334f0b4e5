"""Static int8 quantisation of an exported detector with ONNX Runtime's tools (QDQ, per-channel weights).

Only the convolutions are quantised; the decoding tail (priors, exp, softmax) stays in float32, where int8 would
cost accuracy and save nothing. Activation ranges come from a folder of calibration photos, pre-processed
exactly as the :class:`singleshot.predictor.Detector` does at the calibration input size.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from singleshot.atomic import write_bytes
from singleshot.data.formats.folder import find_images
from singleshot.errors import SingleshotError
from singleshot.images import decode_image


class QuantizeError(SingleshotError):
    """Quantisation cannot run; the message says why."""


def calibration_blobs(
    images_dir: str | Path, size_hw: tuple[int, int], mean_rgb: tuple[float, float, float], limit: int = 64
) -> list[np.ndarray]:
    """Up to ``limit`` photos of ``images_dir`` as ``(1, 3, H, W)`` float32 0-255 inputs (fitted, mean-padded)."""
    from singleshot.inference import resize_keep_aspect

    paths = find_images(Path(images_dir))
    if not paths:
        raise QuantizeError(f"{images_dir}: no calibration images found")
    step = max(1, len(paths) // limit)
    blobs = []
    for path in paths[::step][:limit]:
        decoded = decode_image(path)
        if decoded is None:
            continue
        resized, _ = resize_keep_aspect(decoded[0], fit=size_hw)  # as the Detector feeds a fixed-size graph
        blob = np.empty((1, 3, *size_hw), np.float32)
        blob[:] = np.asarray(mean_rgb, np.float32)[None, :, None, None]
        blob[0, :, : resized.shape[0], : resized.shape[1]] = resized.transpose(2, 0, 1)
        blobs.append(blob)
    if not blobs:
        raise QuantizeError(f"{images_dir}: none of the calibration images could be read")
    return blobs


def quantize_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    calib_dir: str | Path,
    size_hw: tuple[int, int] = (480, 640),
    mean_rgb: tuple[float, float, float] = (123.675, 116.28, 103.53),
    limit: int = 64,
) -> Path:
    """Write an int8 (QDQ) copy of ``fp32_path`` calibrated on ``calib_dir``; returns ``out_path``."""
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise QuantizeError("int8 quantisation needs onnxruntime: pip install onnxruntime") from None

    size_hw = tuple(v + (-v % 32) for v in size_hw)  # the exported graph's padded size
    blobs = calibration_blobs(calib_dir, size_hw, mean_rgb, limit)

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(blobs)

        def get_next(self):
            blob = next(self._it, None)
            return None if blob is None else {"image": blob}

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantized = Path(tmp) / "int8.onnx"  # the target is only replaced, atomically, once it is complete
        quantize_static(
            str(prepared), str(quantized), _Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )
        _copy_metadata(Path(fp32_path), quantized, out_path)
    return out_path


def _copy_metadata(source: Path, quantized: Path, target: Path) -> None:
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(source), load_external_data=False).metadata_props}
    proto = onnx.load(str(quantized))
    del proto.metadata_props[:]
    for key, value in {**meta, "singleshot_int8": "true"}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    write_bytes(target, proto.SerializeToString())
