import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from singleshot.bench import BenchReport, BenchRow, frame_from, run_bench
from singleshot.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_frame_from_covers_without_stretching():
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 140:160] = 255  # a centred stripe stays centred and keeps its aspect
    frame = frame_from(image, 64, 48)
    assert frame.shape == (48, 64, 3)
    cols = np.flatnonzero(frame[24, :, 0] > 128)
    assert abs(cols.mean() - 31.5) < 1.5 and 8 <= len(cols) <= 11


def test_report_markdown_and_json():
    report = BenchReport(rows=[BenchRow("singleshot", "ort", "640x480", 2, 3.0, 4.0, 0.5, 2.0, 0.5, 0.9, 0.25),
                               BenchRow("retinaface", "peer", "640x480", 2, 6.0, 7.0)],
                         settings={"x": "y"}, skipped=["mtcnn: not installed"])
    text = report.markdown()
    assert "| singleshot | ort | 640x480 | 2 | 3.00 | 4.00 | 0.50 | 2.00 | 0.50 (17%) | 0.25 | 0.9000 |" in text
    assert "| retinaface | peer | 640x480 | 2 | 6.00 | 7.00 | - | - | - | - | - |" in text
    assert "skipped: mtcnn" in text
    assert json.loads(report.to_json())["rows"][0]["ap50"] == 0.9


def test_run_bench_torch_and_peers_with_ap(tmp_path):
    pytest.importorskip("onnxruntime")
    peers = ["haar"] if hasattr(cv2, "CascadeClassifier") else []
    report = run_bench(None, runtimes=["torch", "ort"], frames=[(64, 48)], threads=[1], runs=2,
                       peers=[*peers, "mtcnn_missing_peer"], data=f"csv:{FIXTURES / 'csv'}", progress=False,
                       log=lambda line: None)
    ours = [r for r in report.rows if r.detector == "singleshot"]
    assert [r.runtime for r in ours] == ["torch", "ort"]
    for r in ours:
        assert r.p50_ms > 0 and r.p90_ms >= r.p50_ms and r.net_ms > 0 and 0 <= r.ap50 <= 1
    assert ours[0].ap50 == pytest.approx(ours[1].ap50, abs=1e-6)  # same detections on both runtimes
    assert any("mtcnn_missing_peer" in s for s in report.skipped)
    if peers:
        assert [r.detector for r in report.rows if r.runtime == "peer"] == ["haar"]


def test_cli_bench_validates(capsys):
    assert main(["bench", "--runtimes", "tensorrt"]) == 2
    assert "tensorrt" in capsys.readouterr().err
    assert main(["bench", "--frames", "640by480"]) == 2
    assert main(["bench", "--data-option", "split=val"]) == 2
    assert "--data-option needs --data" in capsys.readouterr().err
    assert main(["bench", "--data", f"voc:{FIXTURES / 'voc'}", "--data-option", "splt=val"]) == 2
    assert "did you mean split" in capsys.readouterr().err


def test_run_bench_on_an_exported_onnx_file(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from singleshot.checkpoint import build_model_from_checkpoint, bundled_weights, load_checkpoint
    from singleshot.deploy.onnx_export import export_onnx

    ckpt = load_checkpoint(bundled_weights())
    path = export_onnx(build_model_from_checkpoint(ckpt).eval(), tmp_path / "m.onnx", ckpt["class_names"],
                       ckpt["mean_rgb"], ckpt["std_rgb"], input_size=(64, 64))
    report = run_bench(path, runtimes=["torch", "ort"], frames=[(64, 48)], threads=[1], runs=2, progress=False,
                       log=lambda line: None)
    assert [r.runtime for r in report.rows] == ["ort"] and report.rows[0].p50_ms > 0
    assert any(s.startswith("torch: needs a checkpoint") for s in report.skipped)
    assert main(["bench", "--weights", str(tmp_path / "missing.onnx"), "--runtimes", "ort"]) == 2
    assert "not found" in capsys.readouterr().err
