"""ONNX export with the priors, the box decoding and the input normalisation inside the graph.

The exported graph takes ``image``: ``(N, 3, H, W)`` float32 RGB in 0-255 (resized, right/bottom padded with the
mean colour) and returns

- ``boxes``: ``(N, P, 4)`` decoded ``xyxy`` boxes in input pixels, clipped to the input;
- ``scores``: ``(N, P, C - 1)`` class probabilities of the foreground classes (softmax over all classes);
- ``landmarks``: ``(N, P, 2L)`` decoded points ``x1, y1, ..., xL, yL`` in input pixels, for a model with a landmark
  head (decoded in the graph as the boxes are).

NMS stays outside (:func:`singleshot.deploy.numpy_ops.postprocess_numpy`), where it is cheap and its settings can
change without re-exporting. With ``dynamic=True`` the priors are computed in the graph from the feature-map
sizes, so one file serves every input size (height and width multiples of 32); otherwise the input size is fixed
and the priors are constants (what OpenCV DNN needs).
"""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from singleshot.atomic import write_bytes
from singleshot.boxes import clip_boxes_xyxy, cxcywh_to_xyxy, xyxy_to_cxcywh
from singleshot.errors import SingleshotError
from singleshot.models import SingleShotDetector
from singleshot.postprocess import foreground_scores
from singleshot.priors import PriorSpec

#: ``metadata_props`` keys written into the ONNX file (read back by the ONNX runtimes).
META_KEYS = (
    "singleshot_class_names", "singleshot_model", "singleshot_input_size", "singleshot_dynamic", "singleshot_mean_rgb",
    "singleshot_vote_iou", "singleshot_square_input",
)
_MAX_LOG_SCALE = math.log(1000.0 / 16)  # as singleshot.boxes.decode_offsets


class ExportError(SingleshotError):
    """An export that cannot be done; the message says why."""


class DecodedDetector(nn.Module):
    """A :class:`SingleShotDetector` with normalisation, priors and decoding folded in (the exported graph).

    ``forward(image (N, 3, H, W) RGB 0-255) -> boxes (N, P, 4) xyxy input pixels, scores (N, P, C - 1)``.
    Equal to :func:`singleshot.postprocess.postprocess`'s decoding before NMS (tested).
    """

    def __init__(
        self,
        model: SingleShotDetector,
        mean_rgb: tuple[float, float, float],
        std_rgb: tuple[float, float, float],
        fixed_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.model = model.eval()
        self.spec: PriorSpec = model.prior_spec
        self.register_buffer("mean", torch.tensor(mean_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("inv_std", 1.0 / torch.tensor(std_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        self.scale_input = any(float(v) != 1.0 for v in std_rgb)
        self.variances = tuple(model.variances)
        self.register_buffer("zero", torch.zeros(()))
        self.register_buffer("one", torch.ones(()))
        self.register_buffer("max_log_scale", torch.tensor(_MAX_LOG_SCALE))
        # a fixed input size makes the priors and the pixel scale constants: no shape arithmetic in the graph
        # (OpenCV DNN reads only such graphs)
        self.fixed_size = tuple(fixed_size) if fixed_size is not None else None
        if self.fixed_size is not None:
            h, w = self.fixed_size
            self.register_buffer("fixed_priors", model.priors(self.fixed_size)[None].clone())
            self.register_buffer("fixed_scale", torch.tensor([w, h, w, h], dtype=torch.float32))
        # (A_k, 2) within-cell prior shapes (w, h) per level, in the spec's unit
        self.shapes = [torch.tensor(level.cell_shapes(), dtype=torch.float32) for level in self.spec.levels]

    def priors(self, maps: list[Tensor], height: Tensor | int, width: Tensor | int) -> Tensor:
        """``(P, 4)`` normalised ``cxcywh`` priors from the maps' sizes (as :func:`singleshot.priors.generate_priors`)."""
        per_level = []
        for level, shapes, fmap in zip(self.spec.levels, self.shapes, maps):
            fh, fw = fmap.shape[-2], fmap.shape[-1]
            if self.spec.unit == "pixels":  # the stride grid (PriorSpec.cell_pitch), whatever the map's size
                size = torch.stack((torch.as_tensor(width), torch.as_tensor(height))).to(torch.float32)
                shapes = shapes / size
                cy = (torch.arange(fh, dtype=torch.float32) + 0.5) * float(level.stride) / size[1]
                cx = (torch.arange(fw, dtype=torch.float32) + 0.5) * float(level.stride) / size[0]
            else:  # the SSD grid: (j + 0.5) / f_k
                cy = (torch.arange(fh, dtype=torch.float32) + 0.5) / fh
                cx = (torch.arange(fw, dtype=torch.float32) + 0.5) / fw
            gy, gx = torch.meshgrid(cy, cx, indexing="ij")
            centres = torch.stack((gx, gy), dim=-1).reshape(-1, 1, 2)  # (H_k * W_k, 1, 2)
            a = shapes.shape[0]
            cells = centres.shape[0]
            level = torch.cat((centres.expand(cells, a, 2), shapes[None].expand(cells, a, 2)), dim=-1)
            per_level.append(level.reshape(-1, 4))
        priors = torch.cat(per_level, dim=0)
        if self.spec.clip:  # as generate_priors; only dynamic graphs get here (ONNX Runtime reads their Clip)
            priors = xyxy_to_cxcywh(clip_boxes_xyxy(cxcywh_to_xyxy(priors)))
        return priors

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        x = image - self.mean
        if self.scale_input:  # else folded into the first convolution at export (fold_input_scale)
            x = x * self.inv_std
        maps = self.model.features(x)
        outputs = self.model.head(maps)
        loc, conf = outputs[0], outputs[1]
        if self.fixed_size is not None:
            priors, scale = self.fixed_priors, self.fixed_scale
        else:
            height, width = image.shape[-2], image.shape[-1]
            priors = self.priors(maps, height, width)[None]  # (1, P, 4)
            scale = torch.stack((torch.as_tensor(width), torch.as_tensor(height))).to(torch.float32).repeat(2)
        centre = priors[..., :2] + loc[..., :2] * self.variances[0] * priors[..., 2:]
        # Min/Max rather than clamp: OpenCV DNN cannot read Clip with optional bounds
        size = priors[..., 2:] * torch.exp(torch.minimum(loc[..., 2:] * self.variances[1], self.max_log_scale))
        corners = torch.cat((centre - size / 2, centre + size / 2), dim=-1)
        corners = torch.minimum(torch.maximum(corners, self.zero), self.one)
        boxes = corners * scale
        if len(outputs) < 3:
            return boxes, foreground_scores(conf)
        points = outputs[2].unflatten(-1, (-1, 2))  # (N, P, L, 2) offsets
        points = priors[..., None, :2] + points * self.variances[0] * priors[..., None, 2:]
        return boxes, foreground_scores(conf), (points * scale[..., None, :2]).flatten(-2)


def fold_input_scale(
    model: SingleShotDetector, std_rgb: tuple[float, float, float], check_size: tuple[int, int] = (64, 96)
) -> SingleShotDetector | None:
    """A copy of ``model`` whose first convolution also divides its input by ``std_rgb``, or None.

    ``conv((x - mean) / std) == conv'(x - mean)`` with ``conv'``'s weights divided by ``std`` per input channel,
    exactly, zero padding included (padding is zero before and after the scaling), so the exported graph saves a
    full-frame multiplication. Done only when the image goes to a single 3-channel ``Conv2d`` and nothing else
    (found by running the model once), and when the folded copy matches the original on a random input;
    otherwise None (the graph keeps its multiplication).
    """
    import copy

    folded = copy.deepcopy(model).eval()
    image = torch.rand(1, 3, *check_size) * 255
    readers: list[nn.Module] = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: readers.append(mod) if args and args[0] is image else None)
             for m in folded.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            folded.features(image)
    finally:
        for h in hooks:
            h.remove()
    if len(readers) != 1 or not isinstance(readers[0], nn.Conv2d) or readers[0].in_channels != 3 \
            or readers[0].groups != 1:
        return None
    inv_std = 1.0 / torch.tensor(std_rgb, dtype=torch.float32)
    with torch.no_grad():
        readers[0].weight.mul_(inv_std.view(1, 3, 1, 1))
        expected = model.eval().features(image * inv_std.view(1, 3, 1, 1))
        got = folded.features(image)
    if any(not torch.allclose(a, b, rtol=1e-4, atol=1e-4) for a, b in zip(expected, got)):
        return None
    return folded


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how closely ONNX Runtime follows PyTorch."""

    path: Path
    input_size: tuple[int, int] | None
    dynamic: bool
    opset: int
    max_box_diff_px: float | None = None
    max_score_diff: float | None = None
    check_size: tuple[int, int] | None = None
    same_detections: bool | None = None

    def summary(self) -> str:
        size = "dynamic (H, W multiples of 32)" if self.dynamic else f"{self.input_size[0]}x{self.input_size[1]}"
        line = f"wrote {self.path} (input {size}, opset {self.opset})"
        if self.max_box_diff_px is not None:
            line += (
                f"\ncheck on a {self.check_size[0]}x{self.check_size[1]} input: largest box difference "
                f"{self.max_box_diff_px:.2e} px, largest score difference {self.max_score_diff:.2e}; detections "
                f"after NMS {'identical' if self.same_detections else 'DIFFER'}"
            )
        return line


def export_onnx(
    model: SingleShotDetector,
    path: str | Path,
    class_names: list[str],
    mean_rgb: tuple[float, float, float],
    std_rgb: tuple[float, float, float],
    *,
    input_size: tuple[int, int] | None = (480, 640),
    dynamic: bool = False,
    opset: int = 17,
    model_name: str = "",
    vote_iou: float | None = None,
) -> Path:
    """Write ``model`` as an ONNX file with decoding inside (see the module docstring).

    Args:
        input_size: ``(H, W)`` of the fixed input, rounded up to multiples of 32 (a 640x480 frame runs unpadded,
            a 320x240 one as 320x256); with ``dynamic`` only the size traced.
        dynamic: batch, height and width free (priors computed in the graph).
        opset: ONNX opset.
        vote_iou: the model's box-voting IoU, recorded in the metadata for the runtimes' post-processing.
    """
    import onnx

    if input_size is None:
        input_size = (480, 640)
    h, w = (int(v) + (-int(v) % 32) for v in input_size)  # the detector pads to multiples of 32
    if min(h, w) < 32:
        raise ExportError(f"input size {input_size[0]}x{input_size[1]} (H x W) is too small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folded = fold_input_scale(model, std_rgb)
    if folded is not None:  # the graph subtracts the mean only; the first convolution divides by std
        model, std_rgb = folded, (1.0, 1.0, 1.0)
    wrapper = DecodedDetector(model, mean_rgb, std_rgb, fixed_size=None if dynamic else (h, w)).eval()
    example = torch.zeros(1, 3, h, w)
    names = ["boxes", "scores"] + (["landmarks"] if getattr(model.head, "num_landmarks", 0) else [])
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, **{n: {0: "batch", 1: "priors"} for n in names}} \
        if dynamic else None
    # traced into a scratch folder beside the target, which only the final atomic write replaces: a kill or a
    # failure mid-export leaves the previous file at ``path`` whole
    with warnings.catch_warnings(), torch.no_grad(), tempfile.TemporaryDirectory(dir=path.parent,
                                                                                  prefix=".export-") as tmp:
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic, expected with dynamic sizes
        torch.onnx.export(
            wrapper, (example,), str(Path(tmp) / "raw.onnx"), input_names=["image"], output_names=names,
            dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True,
        )
        proto = onnx.load(str(Path(tmp) / "raw.onnx"))
    meta = {
        "singleshot_class_names": ",".join(class_names),
        "singleshot_model": model_name,
        "singleshot_input_size": f"{h}x{w}",
        "singleshot_dynamic": str(bool(dynamic)).lower(),
        "singleshot_mean_rgb": ",".join(f"{v:g}" for v in mean_rgb),  # the padding colour of the inputs
    }
    if vote_iou is not None:
        meta["singleshot_vote_iou"] = f"{vote_iou:g}"
    if model.prior_spec.square_input:  # read back by the Detector, as ModelPredictor pads
        meta["singleshot_square_input"] = "true"
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    write_bytes(path, proto.SerializeToString())
    return path


#: What a message about an ONNX file that is not a detector export says was expected.
EXPECTED_GRAPH = ("expected a singleshot detector export: input 'image' (N, 3, H, W), outputs 'boxes' and 'scores' "
                  "(singleshot export --out FILE.onnx)")


class GraphError(SingleshotError):
    """An ONNX file that cannot be read, or is not a detector graph; the message says what was expected."""


def _load_proto(path: str | Path):
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - protobuf's DecodeError, a truncated file's, OSError: all "unusable"
        detail = f"{type(err).__name__}: {err}".splitlines()[0]
        raise GraphError(f"{path}: not a readable ONNX file ({detail}); {EXPECTED_GRAPH}") from None


def read_metadata(path: str | Path) -> dict[str, str]:
    """The singleshot ``metadata_props`` of an exported file (empty for foreign ONNX files); a one-line
    :class:`GraphError` for a file that is not ONNX at all."""
    proto = _load_proto(path)
    return {p.key: p.value for p in proto.metadata_props if p.key in META_KEYS}


def read_detector_metadata(path: str | Path) -> dict[str, str]:
    """:func:`read_metadata` of a graph checked to be a detector: an ``image`` input of rank 4 and ``boxes`` and
    ``scores`` outputs (a classification model or another project's detector gets a one-line :class:`GraphError`
    before any runtime loads it)."""
    proto = _load_proto(path)
    weights = {t.name for t in proto.graph.initializer}
    inputs = {i.name: len(i.type.tensor_type.shape.dim) for i in proto.graph.input if i.name not in weights}
    outputs = [o.name for o in proto.graph.output]
    if inputs.get("image") != 4 or not {"boxes", "scores"} <= set(outputs):
        raise GraphError(f"{path}: a graph with inputs {sorted(inputs)} and outputs {outputs}; {EXPECTED_GRAPH}")
    return {p.key: p.value for p in proto.metadata_props if p.key in META_KEYS}


def compare_with_torch(
    model: SingleShotDetector,
    onnx_path: str | Path,
    mean_rgb: tuple[float, float, float],
    std_rgb: tuple[float, float, float],
    input_size: tuple[int, int],
    seed: int = 1,
) -> tuple[float, float, bool]:
    """Run PyTorch and ONNX Runtime on a random input and compare.

    Returns ``(largest box difference in px, largest score difference, same detections after NMS)``; the NMS
    comparison uses min_score 0.05, IoU 0.45 and checks the kept boxes (within 1e-3 px). When the scores agree to
    ``1e-5``, ONNX Runtime's boxes go through NMS in PyTorch's score order: on a random input thousands of boxes
    score within float rounding of each other, and two rankings of such ties keep different boxes without either
    runtime being wrong; the score difference is reported on its own.
    """
    import onnxruntime as ort

    from singleshot.deploy.numpy_ops import postprocess_numpy

    rng = np.random.default_rng(seed)
    # a smooth random image (not noise) so the detector produces a realistic spread of scores
    small = rng.uniform(0, 255, size=(1, 3, max(1, input_size[0] // 16), max(1, input_size[1] // 16)))
    image = torch.nn.functional.interpolate(torch.from_numpy(small).float(), size=input_size, mode="bilinear")
    wrapper = DecodedDetector(model, mean_rgb, std_rgb).eval()
    with torch.no_grad():
        outputs_t = [t.numpy() for t in wrapper(image)]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    outputs_o = session.run(None, {"image": image.numpy()})
    # points ride with their boxes (as the runtimes return them), so the box comparison covers them too
    boxes_t, scores_t = np.concatenate([outputs_t[0], *outputs_t[2:]], -1), outputs_t[1]
    boxes_o, scores_o = np.concatenate([outputs_o[0], *outputs_o[2:]], -1), outputs_o[1]
    box_diff = float(np.abs(boxes_t - boxes_o).max())
    score_diff = float(np.abs(scores_t - scores_o).max())
    # no top_k or pre-NMS cut: near-equal scores at a cut would make the comparison about ties, not the runtimes
    uncut = {"min_score": 0.05, "top_k": 1_000_000, "pre_nms_top_k": 1_000_000}
    det_t = postprocess_numpy(boxes_t, scores_t, **uncut)[0]
    det_o = postprocess_numpy(boxes_o, scores_t if score_diff <= 1e-5 else scores_o, **uncut)[0]
    same = same_detections(det_t, det_o)
    return box_diff, score_diff, same


def same_detections(
    a: tuple[np.ndarray, np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray, np.ndarray], tol_px: float = 1e-3
) -> bool:
    """Whether two ``(boxes, scores, labels)`` detection sets are the same boxes (within ``tol_px``) and labels.

    Compared as sets: each sorted by label, then coordinates, and compared in that order; boxes that land at
    different places of the two orders (coordinates within ``tol_px`` of another box's can sort either way) are
    then paired one by one with any unpaired box of the same label within ``tol_px``.
    """
    if a[0].shape != b[0].shape:
        return False
    if not a[0].size:
        return True
    keys_a = np.lexsort((*a[0].T[::-1], a[2]))
    keys_b = np.lexsort((*b[0].T[::-1], b[2]))
    boxes_a, labels_a = a[0][keys_a], a[2][keys_a]
    boxes_b, labels_b = b[0][keys_b], b[2][keys_b]
    off = (np.abs(boxes_a - boxes_b).max(axis=1) > tol_px) | (labels_a != labels_b)
    if not off.any():
        return True
    if off.sum() > 2000:  # not a reordering of near-equal boxes: different detections
        return False
    rest = np.flatnonzero(off)  # the out-of-order boxes of b, paired below with those of a
    unpaired = np.ones(rest.size, bool)
    for i in rest:
        near = unpaired & (labels_b[rest] == labels_a[i]) & (np.abs(boxes_b[rest] - boxes_a[i]).max(axis=1) <= tol_px)
        if not near.any():
            return False
        unpaired[np.argmax(near)] = False
    return True


def export_crop_network(net: nn.Module, input_size: int, path: str | Path, output_name: str,
                        uint8_mean_std: tuple | None = None) -> Path:
    """Write a small per-face network (points, attributes) as ONNX with a dynamic face axis: ``crops (K, 3, S, S)``
    normalised float32 RGB -> ``output_name (K, ...)``; with ``uint8_mean_std`` ``(mean_rgb, std_rgb)``, ``crops
    (K, S, S, 3)`` uint8 RGB as cut from a photo, normalised inside the graph
    (:class:`singleshot.models.layers.Uint8Input`)."""
    from singleshot.models.layers import Uint8Input

    path = Path(path)
    if uint8_mean_std is None:
        example = torch.zeros(1, 3, input_size, input_size)
    else:
        net = Uint8Input(net, *uint8_mean_std)
        example = torch.zeros(1, input_size, input_size, 3, dtype=torch.uint8)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (example,), str(path), input_names=["crops"], output_names=[output_name],
                          dynamic_axes={"crops": {0: "faces"}, output_name: {0: "faces"}}, opset_version=17,
                          dynamo=False)
    return path
