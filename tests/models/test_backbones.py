import pytest
import torch

from singleshot.models.backbones import Backbone
from singleshot.registry import BACKBONES


@pytest.mark.parametrize("name", BACKBONES.names())
def test_backbone_declares_its_outputs(name):
    backbone = BACKBONES.get(name)()
    assert isinstance(backbone, Backbone)
    assert backbone.name == name
    assert len(backbone.out_channels) == len(backbone.strides)
    h, w = 96, 128
    with torch.no_grad():
        maps = backbone(torch.zeros(2, 3, h, w))
    assert len(maps) == len(backbone.out_channels)
    for m, channels, stride in zip(maps, backbone.out_channels, backbone.strides):
        assert m.shape[:2] == (2, channels)
        assert abs(m.shape[2] - h / stride) <= 1 and abs(m.shape[3] - w / stride) <= 1


def test_vgg16_ssd300_base_geometry():
    backbone = BACKBONES.get("vgg16")()
    with torch.no_grad():
        conv4_3, conv7 = backbone(torch.zeros(1, 3, 300, 300))
    assert conv4_3.shape == (1, 512, 38, 38)  # ceil-mode pool3
    assert conv7.shape == (1, 1024, 19, 19)  # pool5 3x3 stride 1 keeps 19x19
    assert backbone.features[16].ceil_mode
    pool5 = backbone.features[30]
    assert (pool5.kernel_size, pool5.stride) == (3, 1)
    assert backbone.conv6.dilation == (6, 6) and backbone.conv6.padding == (6, 6)
    assert backbone.conv7.kernel_size == (1, 1)
    torch.testing.assert_close(backbone.l2norm.weight, torch.full((512,), 20.0))
    # torchvision's VGG16 layout: the convolutions sit at the same indices of `features`.
    conv_indices = [i for i, m in enumerate(backbone.features) if isinstance(m, torch.nn.Conv2d)]
    assert conv_indices == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


def test_slim_extra_units_start_as_the_identity_of_a_trained_model():
    from singleshot.engine.trainer import load_matching
    from singleshot.models import create_model

    torch.manual_seed(0)
    base = create_model("face_slim", width=0.25).eval()
    for m in base.modules():  # non-trivial BatchNorm statistics, as in a trained model
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    deep = create_model("face_slim", width=0.25, extra_units=(1, 2, 1)).eval()
    summary = load_matching(deep, base.state_dict())
    assert "0 of the checkpoint unused" in summary and "new (in backbone)" in summary
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        for a, b in zip(base(x), deep(x)):
            assert torch.equal(a, b)
    assert sum(p.numel() for p in deep.parameters()) > sum(p.numel() for p in base.parameters())
    with pytest.raises(ValueError, match="extra_units"):
        create_model("face_slim", extra_units=(0, -1, 0))
