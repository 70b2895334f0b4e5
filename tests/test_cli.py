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
