"""A share of any set held out by the hash of its image keys (load_annotations' hold_out and take)."""

import pytest

from singleshot.cli import main
from singleshot.data.formats import DataError, held_out, load_annotations
from singleshot.structures import AnnotationSet, Sample


def test_held_out_is_a_stable_share_of_keys():
    keys = [f"images/{n:06d}.jpg" for n in range(4000)]
    share = sum(held_out(k, 0.1) for k in keys) / len(keys)
    assert 0.08 < share < 0.12
    assert [held_out(k, 0.1) for k in keys] == [held_out(k, 0.1) for k in keys]
    # a larger fraction holds out a superset: growing the validation part never moves an image into training
    assert all(held_out(k, 0.2) for k in keys if held_out(k, 0.1))


def test_rest_and_held_out_partition_a_set(monkeypatch):
    import numpy as np

    from singleshot.registry import DATASET_FORMATS

    samples = [Sample(image_path=f"/x/{n}.jpg", key=f"{n}.jpg", boxes_xyxy=np.zeros((0, 4), np.float32),
                      labels=np.zeros(0, np.int64), ignore=np.zeros(0, bool)) for n in range(200)]
    monkeypatch.setitem(DATASET_FORMATS._entries, "toy", lambda path, **kw: AnnotationSet(
        root=path, samples=samples, class_names=["background", "a"], format="toy"))
    rest = load_annotations("toy:x", hold_out=0.25)
    kept = load_annotations("toy:x", hold_out=0.25, take="held_out")
    assert sorted(s.key for s in rest.samples + kept.samples) == sorted(s.key for s in samples)
    assert 30 < len(kept) < 70 and not {s.key for s in rest.samples} & {s.key for s in kept.samples}
    assert len(load_annotations("toy:x")) == 200
    for bad in [{"hold_out": 1.5}, {"hold_out": 0.1, "take": "val"}, {"take": "held_out"}]:
        with pytest.raises(DataError, match="toy:x"):
            load_annotations("toy:x", **bad)


def test_the_cli_takes_hold_out_for_every_format(capsys):
    from pathlib import Path

    voc = Path(__file__).parents[2] / "fixtures" / "voc"
    assert main(["data", "stats", f"voc:{voc}", "--data-option", "hold_out=0.5", "--data-option", "take=held_out"]) == 0
    assert "images:" in capsys.readouterr().out
    assert main(["data", "stats", f"voc:{voc}", "--data-option", "hold_out=2"]) == 2
    assert "hold_out must be a fraction" in capsys.readouterr().err
