import torch

from singleshot.attributes.classifier import ATTRIBUTES
from singleshot.attributes.model import AttributeNet, load_attribute_net
from singleshot.models import create_model


def test_attribute_net_on_face_slim_backbone():
    net = AttributeNet(create_model("face_slim", width=0.25).backbone)
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 1)


def test_bundled_smile_weights_load():
    net, checkpoint = load_attribute_net(ATTRIBUTES.get("smile")())
    assert checkpoint["kind"] == "attribute" and checkpoint["name"] == "smile" and not net.training
    size = int(checkpoint["input_size"])
    assert net(torch.zeros(1, 3, size, size)).shape == (1, 1)
