import json
import subprocess
import sys

from singleshot.cli import main


def test_models_json(capsys):
    assert main(["models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed["ssd300_vgg16"]["num_priors"] == 8732
    assert any(m["backbone"] == "alexnet" for m in listed.values())
    for m in listed.values():
        assert m["parameters"] > 0 and m["gflops"] > 0


def test_models_table(capsys):
    assert main(["models", "ssd_alexnet"]) == 0
    out = capsys.readouterr().out
    assert "ssd_alexnet" in out and "GFLOPs" in out


def test_unknown_model_is_one_line_error(capsys):
    assert main(["models", "ssd301"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ssd301" in err and "Traceback" not in err


def test_console_module_runs():
    result = subprocess.run(
        [sys.executable, "-m", "singleshot", "models", "--json", "ssd_alexnet"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["name"] == "ssd_alexnet"


FIXTURES = __import__("pathlib").Path(__file__).resolve().parent / "fixtures"


def test_data_stats_text_and_json(capsys):
    assert main(["data", "stats", f"csv:{FIXTURES / 'csv'}", "--long-side", "128"]) == 0
    out = capsys.readouterr()
    assert "images: 3" in out.out and "boxes: 3" in out.out
    assert "clipped" in out.err  # the reader's note about a box crossing the image border
    assert main(["data", "stats", f"dlib:{FIXTURES / 'dlib' / 'training.xml'}", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["boxes"] == 2 and stats["ignored_boxes"] == 1


def test_data_stats_errors_are_one_line(capsys):
    for argv in (
        ["data", "stats", "csv:/nonexistent/folder"],
        ["data", "stats", "nosuchformat:/x"],
        ["data", "stats", f"voc:{FIXTURES / 'voc'}", "--data-option", "singel_class=face"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "error" in err and "Traceback" not in err
    assert main(["data", "stats", f"voc:{FIXTURES / 'voc'}", "--data-option", "single_class=face"]) == 0


def test_eval_voc_json_and_plot(tmp_path, capsys):
    predictions = {
        "images/a.jpg": [[10, 8, 30, 20, 0.9], [0, 0, 5, 5, 0.8]],  # a hit and a false positive
        "images/b.jpg": [[5, 5, 15, 15, 0.7, 1]],
    }
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(predictions))
    plot = tmp_path / "pr.png"
    argv = ["eval", "--data", f"csv:{FIXTURES / 'csv'}", "--predictions", str(path), "--json", "--plot", str(plot)]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["protocol"] == "voc"
    # 3 faces, hits at ranks 1 and 3: precision 1 at recall 1/3, 2/3 at recall 2/3 -> AP = 1/3 + 2/3 * 1/3
    assert abs(result["metrics"]["mAP"] - (1 / 3 + 2 / 9)) < 1e-6
    assert plot.stat().st_size > 1000
    assert main(argv[:-3] + ["--eval-option", "use_07_metric=true"]) == 0


def test_eval_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    cases = [
        ["eval", "--data", f"csv:{FIXTURES / 'csv'}", "--predictions", str(tmp_path / "missing.json")],
        ["eval", "--data", f"csv:{FIXTURES / 'csv'}", "--predictions", str(bad)],
        ["eval", "--data", f"csv:{FIXTURES / 'csv'}", "--predictions", str(bad), "--protocol", "vocc"],
        ["eval", "--data", f"csv:{FIXTURES / 'csv'}", "--predictions", str(bad), "--eval-option", "min_sise=3"],
    ]
    for argv in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and "Traceback" not in err, err
