import pytest

from singleshot.registry import BACKBONES, MODELS, Registry


def test_register_and_lookup_with_suggestion():
    reg = Registry("thing")

    @reg.register()
    def alpha():
        return 1

    assert reg.get("alpha")() == 1
    assert "alpha" in reg and reg.names() == ["alpha"]
    with pytest.raises(KeyError, match="did you mean alpha"):
        reg.get("alpah")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha")(alpha)


def test_builtin_entries_are_registered():
    import singleshot.models  # noqa: F401

    assert {"vgg16", "alexnet"} <= set(BACKBONES.names())
    assert {"ssd300_vgg16", "ssd_alexnet"} <= set(MODELS.names())
