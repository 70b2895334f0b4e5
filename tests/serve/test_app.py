"""The HTTP API against a real uvicorn server: answers in original pixels, every bad upload a 4xx with a JSON message
(and the server still answering after it), a full queue a 503, 200 requests at concurrency 8 all answered."""

from __future__ import annotations

import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serve.conftest import MAX_BYTES, start_server

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo.jpg"


def big_png(width: int, height: int) -> bytes:
    """A valid 1-bit grey PNG of ``width x height``, all black: tiny on the wire, huge once decoded (a decoder
    allocates at least ``width x height`` bytes for it, three times that as RGB)."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + the packed bits of one row
    body = b"".join(packer.compress(row * 1000) for _ in range(height // 1000)) + packer.compress(row * (height % 1000))
    body += packer.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def post(url: str, data: bytes, content_type: str = "image/jpeg", query: str = "", name: str = "photo.jpg"):
    return httpx.post(f"{url}/detect{query}", files={"image": (name, data, content_type)}, timeout=60)


def assert_still_serving(url: str) -> None:
    assert httpx.get(f"{url}/health", timeout=30).json()["status"] == "ok"
    answer = post(url, DEMO.read_bytes())
    assert answer.status_code == 200 and len(answer.json()["faces"]) == 5


def test_detect_answers_faces_in_original_pixels_as_the_detector_finds_them(served):
    from singleshot import Detector

    answer = post(served.url, DEMO.read_bytes(), query="?min_score=0.5&attributes=smile")
    assert answer.status_code == 200
    body = answer.json()
    assert body["image"] == {"width": 512, "height": 367}
    detector = Detector(served.app.state.model.onnx_path, runtime="ort")
    ref = detector.detect(str(DEMO), min_score=0.5, attributes=["smile"])
    faces = body["faces"]
    assert len(faces) == len(ref) == 5
    assert set(faces[0]) == {"box_xyxy", "score", "landmarks", "attributes"}
    np.testing.assert_allclose([f["box_xyxy"] for f in faces], ref.boxes_xyxy.numpy(), atol=0.02)
    np.testing.assert_allclose([f["score"] for f in faces], ref.scores.numpy(), atol=1e-3)
    np.testing.assert_allclose([f["attributes"]["smile"] for f in faces], ref.attributes["smile"].numpy(), atol=1e-3)
    # the bundled model has no landmark head: its five points come from the bundled point network, as in Python
    np.testing.assert_allclose([f["landmarks"] for f in faces], ref.landmarks.numpy(), atol=0.02)


def test_min_score_and_attributes_are_optional(served):
    few = post(served.url, DEMO.read_bytes(), query="?min_score=0.999").json()["faces"]
    assert 0 < len(few) < 5 and all(f["score"] >= 0.999 and f["attributes"] == {} for f in few)


def _truncated_jpeg() -> bytes:
    data = DEMO.read_bytes()
    return data[: len(data) // 2]


BAD_UPLOADS = {
    # name: (bytes, declared content type, expected status, words of the message)
    "not an image": (b"hello, this is text\n" * 50, "image/jpeg", 400, "not an image"),
    "corrupt (truncated JPEG)": (_truncated_jpeg(), "image/jpeg", 400, "corrupt"),
    "empty file": (b"", "image/jpeg", 400, "empty"),
    "over the size limit": (b"\xff\xd8\xff" + b"\0" * MAX_BYTES, "image/jpeg", 413, "larger than the limit"),
    "request far over the size limit": (b"\xff\xd8\xff" + b"\0" * (MAX_BYTES + 200_000), "image/jpeg", 413, "limit"),
    "wrong content type": (DEMO.read_bytes(), "text/plain", 415, "unsupported content type"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_is_a_4xx_with_a_json_message_and_the_server_keeps_serving(served, case):
    data, kind, status, words = BAD_UPLOADS[case]
    answer = post(served.url, data, kind)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert "\n" not in answer.json()["detail"]
    assert_still_serving(served.url)


def test_pixel_bomb_is_refused_from_its_header_before_any_decoding(served, monkeypatch):
    bomb = big_png(20000, 20000)
    assert len(bomb) < 100_000  # 400 Mpx in under 100 KB: the limit on bytes alone would let it in
    assert struct.unpack(">II", bomb[16:24]) == (20000, 20000)  # IHDR: what any decoder would allocate for
    assert len(zlib.decompressobj().decompress(bomb[41:-12], 1 << 20)) == 1 << 20  # real pixel rows, not garbage
    decoded = []
    monkeypatch.setattr(type(served.app.state.engine), "detect", lambda *a, **k: decoded.append(1))
    answer = post(served.url, bomb, "image/png", name="bomb.png")
    assert answer.status_code == 413 and "pixels" in answer.json()["detail"]
    assert decoded == []  # refused on the event loop, from the header: the decoding pool never saw it
    monkeypatch.undo()
    assert_still_serving(served.url)


def test_requests_that_are_not_a_photo_upload_get_a_4xx(served):
    assert httpx.post(f"{served.url}/detect", json={"image": "x"}).status_code == 415
    no_field = httpx.post(f"{served.url}/detect", files={"photo": ("a.jpg", DEMO.read_bytes(), "image/jpeg")})
    assert no_field.status_code == 400 and "'image'" in no_field.json()["detail"]
    text_field = httpx.post(f"{served.url}/detect", data={"image": "not a file"},
                            headers={"content-type": "multipart/form-data; boundary=x"})
    assert 400 <= text_field.status_code < 500
    assert post(served.url, DEMO.read_bytes(), query="?attributes=age").status_code == 400
    assert post(served.url, DEMO.read_bytes(), query="?min_score=2").status_code == 422
    assert_still_serving(served.url)


def test_a_full_queue_answers_503_at_once_instead_of_growing(served, monkeypatch):
    engine = served.app.state.engine
    release = threading.Event()
    original = type(engine).detect

    def slow(self, *args, **kwargs):
        release.wait(30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(engine), "detect", slow)
    monkeypatch.setattr(engine, "max_queue", 1)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, served.url, DEMO.read_bytes())
        for _ in range(600):  # until the first request holds the only place in the queue
            if engine.pending == 1:
                break
            threading.Event().wait(0.05)
        assert engine.pending == 1
        busy = post(served.url, DEMO.read_bytes())
        release.set()
        assert busy.status_code == 503 and "busy" in busy.json()["detail"]
        assert busy.headers["retry-after"] == "1"
        assert first.result().status_code == 200
    monkeypatch.undo()
    assert engine.pending == 0
    assert_still_serving(served.url)


def test_200_requests_at_concurrency_8_all_succeed(served):
    data = DEMO.read_bytes()
    with httpx.Client(base_url=served.url, timeout=120) as client, ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: client.post("/detect", files={"image": ("a.jpg", data, "image/jpeg")})
                              .status_code, range(200)))
    assert codes == [200] * 200


def test_page_models_health_and_api_docs_are_served(served):
    page = httpx.get(served.url + "/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    config = httpx.get(served.url + "/model/config.json").json()
    assert config["model"] == "/model/face.onnx" and "smile" in config["attributes"]
    onnx = httpx.get(served.url + config["model"])
    assert onnx.status_code == 200 and onnx.content == served.app.state.model.onnx_path.read_bytes()
    assert httpx.get(served.url + config["attributes"]["smile"]["model"]).status_code == 200
    assert config["landmarks"] is False and config["points"]["input_size"] == 64
    assert httpx.get(served.url + config["points"]["model"]).status_code == 200
    assert httpx.get(served.url + "/model/nothing.onnx").status_code == 404
    health = httpx.get(served.url + "/health").json()
    assert health["model"] == "face_slim" and health["landmarks"] is True and health["attributes"] == ["smile"]
    assert httpx.get(served.url + "/docs").status_code == 200
    assert "/detect" in httpx.get(served.url + "/openapi.json").json()["paths"]


def test_a_landmark_model_answers_its_five_points(tmp_path):
    from singleshot import Detector
    from singleshot.serve import create_app
    from tests.deploy.test_onnx_export import _landmark_checkpoint

    app = create_app(_landmark_checkpoint(tmp_path, 1, perturb=True), attributes=(), model_dir=tmp_path / "m")
    assert app.state.model.landmarks
    server, thread, url = start_server(app)
    try:
        body = post(url, DEMO.read_bytes(), query="?min_score=0.3").json()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    ref = Detector(app.state.model.onnx_path, runtime="ort").detect(str(DEMO), min_score=0.3)
    assert len(body["faces"]) == len(ref) > 0
    points = np.array([f["landmarks"] for f in body["faces"]])
    assert points.shape == (len(ref), 5, 2)
    np.testing.assert_allclose(points, ref.landmarks.numpy(), atol=0.02)


def test_serve_verb_refuses_a_port_in_use_in_one_line(capsys):
    import socket

    from singleshot.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("singleshot serve: error: cannot listen on 127.0.0.1:") and "\n" not in err
    assert main(["serve", "--port", "70000"]) == 2
    assert "not a TCP port" in capsys.readouterr().err
