"""The HTTP server behind ``singleshot serve``: a FastAPI app with the detector, the demo page and its assets.

``create_app(...)`` builds everything up front (the exported ONNX graph, one ONNX Runtime session per worker, the
attribute heads), so the first request is as fast as the others and a bad ``--weights`` fails at start, not at the
first photo. Requests:

- ``GET /``: the demo page (``static/index.html``); ``GET /static/...``: its script, style and the onnxruntime-web
  files that ``make web`` copies into ``static/ort`` (no CDN: the page works without a network);
- ``GET /model/config.json``, ``/model/face.onnx``, ``/model/points.onnx`` (the point network, for a face model
  without a landmark head), ``/model/<attribute>.onnx``: what the page runs in the browser;
- ``GET /health``: the model and the queue;
- ``POST /detect``: multipart field ``image``; query ``min_score``, ``attributes=smile`` (comma-separated).

Inference runs in a thread pool of ``workers`` threads (ONNX Runtime releases the GIL), never on the event loop.
At most ``max_queue`` requests wait or run at once; one more is answered 503 at once instead of piling up memory
and latency. Bad uploads are refused by :mod:`singleshot.serve.uploads` with a 4xx and ``{"detail": "..."}``.
"""

# No "from __future__ import annotations": FastAPI reads the route functions' annotations at run time, and
# Request is imported inside create_app (fastapi is an optional extra), where a string annotation could not find it.

import asyncio
import queue
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singleshot.errors import SingleshotError
from singleshot.serve.uploads import UploadError, UploadLimits, check_content_type, check_size, decode, read_header

#: The page, its script and style (in git); ``ort/`` beside them holds the onnxruntime-web files (``make web``).
STATIC_DIR = Path(__file__).parent / "static"
#: The onnxruntime-web files the page loads; all three come from the npm package (``make web``).
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


class ServeError(SingleshotError):
    """A server that cannot start as asked (weights, attribute, limits); the message says why."""


@dataclass
class ServedModel:
    """The files and settings the server runs and hands to the page."""

    onnx_path: Path
    name: str
    landmarks: bool
    vote_iou: float | None
    mean_rgb: tuple[float, ...]
    input_size: int
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> page settings, file under "path"
    points: dict[str, Any] | None = None  # the point network's page settings, its file under "path" (None: none)


class _Engine:
    """``workers`` detectors, each used by one pool thread at a time, and the count of requests waiting or running."""

    def __init__(self, onnx_path: Path, workers: int, threads: int | None, input_size: int,
                 attributes: dict[str, str], max_queue: int) -> None:
        from singleshot.predictor import Detector

        self._free: queue.SimpleQueue = queue.SimpleQueue()
        self.detectors = []
        self.attribute_sources = dict(attributes)  # served name -> what loads it (a registered name or a checkpoint)
        for _ in range(workers):
            detector = Detector(onnx_path, input_size=input_size, threads=threads, runtime="ort")
            for source in attributes.values():
                detector.attribute(source)  # loaded now: the first request with ?attributes= would pay for it
            _ = detector.point_refiner  # likewise the point network, where the model takes one
            self.detectors.append(detector)
            self._free.put(detector)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="singleshot-detect")
        self.max_queue = max_queue
        self.pending = 0  # touched only on the event loop's thread: no lock needed

    def detect(self, data: bytes, limits: UploadLimits, min_score: float, attributes: Sequence[str]) -> dict:
        """Decode and detect, on a pool thread; the answer of ``POST /detect``."""
        image = decode(data, limits)
        # one detector per pool thread at a time: a Detector keeps per-call state (timing) and is not shared
        detector = self._free.get()
        try:
            sources = [self.attribute_sources[name] for name in attributes]
            faces = detector.detect(image, min_score=min_score, attributes=sources or None)
        finally:
            self._free.put(detector)
        return detections_json(faces, image.shape[1], image.shape[0])


def detections_json(faces, width: int, height: int) -> dict:
    """:class:`singleshot.structures.Detections` -> the API's answer (pixels of the original image)."""
    boxes = faces.boxes_xyxy.numpy().astype(float)
    scores = faces.scores.numpy().astype(float)
    points = faces.landmarks.numpy().astype(float) if faces.landmarks is not None else None
    attributes = {name: values.numpy().astype(float) for name, values in faces.attributes.items()}
    out = []
    for i in range(len(boxes)):
        out.append({
            "box_xyxy": [round(v, 2) for v in boxes[i].tolist()],
            "score": round(float(scores[i]), 4),
            "landmarks": [[round(x, 2), round(y, 2)] for x, y in points[i].tolist()] if points is not None else None,
            "attributes": {name: round(float(values[i]), 4) for name, values in attributes.items()},
        })
    return {"image": {"width": int(width), "height": int(height)}, "faces": out}


def prepare_model(weights: str | Path | None, folder: Path, attributes: Sequence[str] = ("smile",),
                  input_size: int = 640) -> ServedModel:
    """The detector as a dynamic ONNX graph in ``folder`` (exported and checked against PyTorch; an ``.onnx`` file
    is used as it is) and each attribute's network beside it, with what the page needs to know about them."""
    from singleshot.attributes import AttributeClassifier
    from singleshot.checkpoint import bundled_weights
    from singleshot.deploy.export import export_model
    from singleshot.deploy.onnx_export import read_metadata

    source = Path(weights) if weights is not None else bundled_weights()
    if not source.is_file():
        raise ServeError(f"{source}: weights file not found")
    if source.suffix.lower() == ".onnx":
        onnx_path = source
    else:
        report = export_model(source, folder / "face.onnx", dynamic=True)
        if not report.ok:
            raise ServeError(f"{source}: the ONNX export does not match PyTorch (box difference "
                             f"{report.box_diff_px:.2e} px); run singleshot export --dynamic to see it")
        onnx_path = report.path
    meta = read_metadata(onnx_path)
    if meta.get("singleshot_dynamic") == "false":
        raise ServeError(f"{onnx_path}: the page needs a graph of any input size (singleshot export --dynamic)")
    import onnx

    outputs = [o.name for o in onnx.load(str(onnx_path), load_external_data=False).graph.output]
    mean = meta.get("singleshot_mean_rgb")
    vote = meta.get("singleshot_vote_iou")
    served = ServedModel(
        onnx_path=onnx_path, name=meta.get("singleshot_model") or source.stem, landmarks="landmarks" in outputs,
        vote_iou=float(vote) if vote else None,
        mean_rgb=tuple(float(v) for v in mean.split(",")) if mean else (123.675, 116.28, 103.53),
        input_size=int(input_size),
    )
    if not served.landmarks:
        # the page runs the point network the server's Detector picks for this model (``points="auto"``)
        from singleshot.points import POINT_MODELS, PointRefiner

        names = meta.get("singleshot_class_names", "").lower().split(",")
        if names == ["background", "face"] and POINT_MODELS.get("face")().is_file():
            refiner = PointRefiner("face")
            served.points = {"path": refiner.export_onnx(folder / "points.onnx"), "input_size": refiner.input_size,
                             "crop_scale": refiner.crop_scale, "mean_rgb": list(refiner.mean_rgb),
                             "std_rgb": list(refiner.std_rgb)}
    for name in attributes:
        classifier = AttributeClassifier(name)
        path = classifier.export_onnx(folder / f"{classifier.name}.onnx")
        served.attributes[classifier.name] = {
            "path": path, "input_size": classifier.input_size, "crop_scale": classifier.crop_scale,
            "mean_rgb": list(classifier.mean_rgb), "std_rgb": list(classifier.std_rgb),
            "flip_tta": classifier.flip_tta, "labels": classifier.labels, "align": classifier.align,
            "source": str(name),
        }
    return served


def web_runtime_ready(static_dir: Path = STATIC_DIR) -> bool:
    """Whether ``make web`` has copied the onnxruntime-web files the page needs."""
    return all((static_dir / "ort" / name).is_file() for name in ORT_FILES)


def create_app(
    weights: str | Path | None = None,
    *,
    workers: int = 1,
    threads: int | None = None,
    max_queue: int = 32,
    limits: UploadLimits | None = None,
    attributes: Sequence[str] = ("smile",),
    input_size: int = 640,
    model_dir: str | Path | None = None,
):
    """The FastAPI app of ``singleshot serve`` (see the module docstring); run it with uvicorn.

    Args:
        weights: a checkpoint or a dynamic ONNX file (None: the bundled face model).
        workers: inference threads, each with its own ONNX Runtime session.
        threads: ONNX Runtime threads per session (None: its default).
        max_queue: most requests waiting or running at once; one more gets 503.
        limits: bytes and pixels one upload may have.
        attributes: attributes the API and the page can score (registered names or checkpoints).
        input_size: long side of the inference resolution, in the API and in the page.
        model_dir: where the exported ONNX files go (None: a new temporary folder).
    """
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    if workers < 1 or max_queue < 1:
        raise ServeError(f"workers ({workers}) and the queue limit ({max_queue}) must be at least 1")
    limits = limits or UploadLimits()
    folder = Path(model_dir) if model_dir is not None else Path(tempfile.mkdtemp(prefix="singleshot-serve-"))
    folder.mkdir(parents=True, exist_ok=True)
    model = prepare_model(weights, folder, attributes, input_size)
    engine = _Engine(model.onnx_path, workers, threads, input_size,
                     {name: spec["source"] for name, spec in model.attributes.items()}, max_queue)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        engine.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="singleshot", summary="Face detection: boxes, landmarks and attributes in original pixels.",
                  lifespan=lifespan)
    app.state.model = model
    app.state.engine = engine

    @app.exception_handler(UploadError)
    async def _upload_error(_request: Request, err: UploadError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/health")
    async def health() -> dict:
        """The model served and the state of the queue."""
        return {
            "status": "ok", "model": model.name, "landmarks": model.landmarks or model.points is not None,
            "attributes": list(model.attributes),
            "workers": len(engine.detectors), "pending": engine.pending, "max_queue": engine.max_queue,
            "web_runtime": web_runtime_ready(),
        }

    @app.get("/model/config.json")
    async def model_config() -> dict:
        """What the page needs to run the model in the browser as the server runs it."""
        from singleshot.predictor import LARGE_FACE_PX, SMALL_PHOTO_ENLARGEMENT

        coarse = engine.detectors[0].large_face_pass_size()  # the server's own detectors decide
        return {
            "model": "/model/face.onnx", "name": model.name, "landmarks": model.landmarks, "vote_iou": model.vote_iou,
            "points": {**{k: v for k, v in model.points.items() if k != "path"}, "model": "/model/points.onnx"}
            if model.points else None,
            "mean_rgb": list(model.mean_rgb), "input_size": model.input_size, "pad_multiple": 32,
            "min_score": 0.5, "max_overlap": 0.45, "top_k": 200, "pre_nms_top_k": 400,
            "large_face_pass": None if coarse is None else {  # the Detector's second pass on small photos
                "enlargement": SMALL_PHOTO_ENLARGEMENT, "large_px": LARGE_FACE_PX, "size": coarse},
            "limits": {"max_bytes": limits.max_bytes, "max_pixels": limits.max_pixels},
            "attributes": {name: {**{k: v for k, v in spec.items() if k not in ("path", "source")}, "model": f"/model/{name}.onnx"}
                           for name, spec in model.attributes.items()},
        }

    @app.get("/model/{name}.onnx", include_in_schema=False)
    async def model_file(name: str) -> FileResponse:
        if name == "face":
            return FileResponse(model.onnx_path, media_type="application/octet-stream")
        if name == "points" and model.points:
            return FileResponse(model.points["path"], media_type="application/octet-stream")
        if name in model.attributes:
            return FileResponse(model.attributes[name]["path"], media_type="application/octet-stream")
        raise HTTPException(404, f"no model {name!r} (models: face, {', '.join(model.attributes) or 'no attributes'})")

    @app.post("/detect", openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "required": ["image"],
                   "properties": {"image": {"type": "string", "format": "binary"}}}}}}})
    async def detect(
        request: Request,
        min_score: float = Query(0.5, ge=0.0, le=1.0, description="lowest score reported"),
        attributes: str = Query("", description="comma-separated attributes to score, e.g. smile"),
    ) -> dict:
        """Faces in the uploaded photo (multipart field ``image``), in pixels of the original image."""
        names = [a.strip() for a in attributes.split(",") if a.strip()]
        unknown = [a for a in names if a not in model.attributes]
        if unknown:
            raise HTTPException(400, f"unknown attribute {unknown[0]!r} (served: {', '.join(model.attributes)})")
        if engine.pending >= engine.max_queue:  # before reading the body: a full server sheds load cheaply
            return JSONResponse({"detail": f"busy: {engine.pending} requests in progress; retry shortly"},
                                status_code=503, headers={"Retry-After": "1"})
        engine.pending += 1
        try:
            data = await _read_image_part(request, limits)
            read_header(data, limits)  # the size the header declares, refused before any decoding
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(engine.executor, engine.detect, data, limits, min_score, names)
        finally:
            engine.pending -= 1

    # after the routes above, so /static/... never shadows them; html=False: no directory listings
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


async def _read_image_part(request, limits: UploadLimits) -> bytes:
    """The bytes of the multipart field ``image``, refused with a 4xx as soon as something is wrong."""
    kind = request.headers.get("content-type", "")
    if not kind.lower().startswith("multipart/form-data"):
        raise UploadError(415, f"expected multipart/form-data with a field 'image', got {kind or 'no content type'!r}")
    declared = request.headers.get("content-length")
    # a little over the limit for the multipart boundaries and headers; the part itself is checked below
    if declared and declared.isdigit() and int(declared) > limits.max_bytes + 64 * 1024:
        raise UploadError(413, f"the request is larger than the limit of {limits.max_bytes} bytes")
    from starlette.exceptions import HTTPException

    try:
        form = await request.form(max_files=1, max_fields=8)
    except HTTPException as err:  # starlette's answer to a malformed body (a 400), in this API's words
        raise UploadError(400, f"unreadable multipart body ({err.detail})") from None
    part = form.get("image")
    if part is None:
        raise UploadError(400, "no field 'image' in the form (send the photo as multipart field 'image')")
    if isinstance(part, str):
        raise UploadError(400, "the field 'image' is text, not a file (send the photo as a file)")
    try:
        check_content_type(part.content_type)
        data = await part.read(limits.max_bytes + 1)  # never more than one byte over the limit in memory
    finally:
        await form.close()
    check_size(data, limits)
    return data


def run_server(
    weights: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    threads: int | None = None,
    max_queue: int = 32,
    input_size: int = 640,
) -> None:
    """Build the app and serve it with uvicorn until interrupted (``singleshot serve``)."""
    try:
        import uvicorn
    except ImportError:
        raise ServeError("singleshot serve needs its extra: pip install 'singleshot[serve]'") from None
    _check_port(host, port)  # before the model is built: a port in use is one line, not a traceback later
    app = create_app(weights, workers=workers, threads=threads, max_queue=max_queue, input_size=input_size)
    print(f"serving {app.state.model.name} on http://{host}:{port} (API docs: http://{host}:{port}/docs)")
    if not web_runtime_ready():
        print("note: the page's onnxruntime-web files are missing (run: make web); POST /detect works without them")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _check_port(host: str, port: int) -> None:
    """Refuse a port that cannot be bound (in use, privileged, not an address of this machine)."""
    import socket

    if not 0 < port < 65536:
        raise ServeError(f"port {port} is not a TCP port (1-65535)")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as err:
        raise ServeError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None
