"""The single-shot detector: backbone -> neck -> head, returning raw ``(loc, conf)`` only.

Loss, decoding and NMS live outside the model (:mod:`singleshot.losses`, :mod:`singleshot.postprocess`), so the
same module trains, evaluates and exports. The detector owns its :class:`~singleshot.priors.PriorSpec` and
produces priors for any input size from the feature-map sizes its own layers give at that size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from singleshot.boxes import DEFAULT_VARIANCES
from singleshot.models.backbones.base import Backbone
from singleshot.priors import PriorGrid, PriorSpec, generate_prior_grid, generate_priors, scaled_prior_spec


class SingleShotDetector(nn.Module):
    """SSD-family detector assembled from parts.

    Args:
        backbone: feature extractor returning maps shallow to deep.
        neck: maps the backbone's list of maps to the list the head predicts from (``nn.Identity``-like allowed).
        head: returns ``(loc (N, P, 4), conf (N, P, num_classes))`` from the neck's maps.
        prior_spec: priors per level, in the head's order.
        num_classes: number of classes including background (index 0).
        input_size: default ``(H, W)`` input of the recipe (the model accepts other sizes).
        variances: SSD offset variances used to encode targets and decode predictions with this model.
    """

    def __init__(
        self,
        backbone: Backbone,
        neck: nn.Module,
        head: nn.Module,
        prior_spec: PriorSpec,
        num_classes: int,
        input_size: tuple[int, int],
        variances: tuple[float, float] = DEFAULT_VARIANCES,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.prior_spec = prior_spec
        self.num_classes = num_classes
        self.input_size = tuple(input_size)
        self.variances = variances
        self._feature_size_cache: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def features(self, x: Tensor) -> list[Tensor]:
        """The maps the head predicts from: ``(N, 3, H, W) -> [(N, C_k, H_k, W_k)]``."""
        return self.neck(self.backbone(x))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, 3, H, W)`` normalised images -> ``loc (N, P, 4)`` offsets and ``conf (N, P, num_classes)`` logits."""
        return self.head(self.features(x))

    def feature_sizes(self, image_size: tuple[int, int]) -> list[tuple[int, int]]:
        """``(H_k, W_k)`` of each predicted-from map for an ``(H, W)`` input, cached per size.

        Found by running the backbone and neck once on a zero image of that size: the sizes then come from the
        layers themselves (ceil-mode pooling, valid convolutions...), whatever the architecture. One forward pass
        per new size (about 10 ms for face_slim at 640x480, 0.3 s for SSD300), then a dictionary lookup.
        """
        key = (int(image_size[0]), int(image_size[1]))
        if key not in self._feature_size_cache:
            param = next(self.parameters())
            was_training = self.training
            self.eval()  # BatchNorm must not update its statistics on the probe
            try:
                with torch.no_grad():
                    maps = self.features(torch.zeros(1, 3, *key, device=param.device, dtype=param.dtype))
            except RuntimeError as err:
                raise ValueError(f"input size {key[0]}x{key[1]} is too small for this model: {err}") from None
            finally:
                self.train(was_training)
            self._feature_size_cache[key] = [tuple(m.shape[-2:]) for m in maps]
        return self._feature_size_cache[key]

    def priors(self, image_size: tuple[int, int] | None = None) -> Tensor:
        """``(P, 4)`` normalised ``cxcywh`` priors for an ``(H, W)`` input (default: the recipe's input size)."""
        size = tuple(image_size) if image_size is not None else self.input_size
        return generate_priors(self.prior_spec, size, self.feature_sizes(size))

    def prior_grid(self, image_size: tuple[int, int] | None = None) -> PriorGrid:
        """The priors of :meth:`priors` with their grid structure, for fast matching during training."""
        size = tuple(image_size) if image_size is not None else self.input_size
        return generate_prior_grid(self.prior_spec, size, self.feature_sizes(size))



class DualShotDetector(SingleShotDetector):
    """Two shots (DSFD, section 3.1): a first-shot head on the original maps, the second on enhanced maps.

    ``forward`` is the second shot only (inference, export, evaluation); :meth:`forward_shots` gives both for
    training with the progressive anchor loss (PAL, section 3.3), the first shot's priors being the second's
    scaled by ``first_shot_scale`` (0.5: "anchors half the size").

    Args:
        neck: backbone maps -> original maps (e.g. :class:`~singleshot.models.necks.SSDExtras`).
        enhance: original maps -> enhanced maps of the same sizes (e.g. :class:`~singleshot.models.necks.FEMNeck`,
            or ``None`` for two shots on the same maps: PAL without FEM).
        head: the second-shot head (on the enhanced maps); ``first_head``: the first-shot head (original maps).
    """

    def __init__(
        self,
        backbone: Backbone,
        neck: nn.Module,
        enhance: nn.Module | None,
        head: nn.Module,
        first_head: nn.Module | None,
        prior_spec: PriorSpec,
        num_classes: int,
        input_size: tuple[int, int],
        first_shot_scale: float = 0.5,
        variances: tuple[float, float] = DEFAULT_VARIANCES,
    ) -> None:
        super().__init__(backbone, neck, head, prior_spec, num_classes, input_size, variances)
        self.enhance = enhance if enhance is not None else nn.Identity()
        self.first_head = first_head
        self.first_shot_spec = scaled_prior_spec(prior_spec, first_shot_scale)

    @property
    def num_shots(self) -> int:
        return 2 if self.first_head is not None else 1

    def original_features(self, x: Tensor) -> list[Tensor]:
        return self.neck(self.backbone(x))

    def features(self, x: Tensor) -> list[Tensor]:
        """The maps the (second-shot) head predicts from: the enhanced maps."""
        return self.enhance(self.original_features(x))

    def forward_shots(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """``[(loc1, conf1), (loc2, conf2)]``: first shot on the original maps, second on the enhanced ones
        (only the second when there is no first head)."""
        original = self.original_features(x)
        second = self.head(self.enhance(original))
        if self.first_head is None:
            return [second]
        return [self.first_head(original), second]

    def shot_prior_grids(self, image_size: tuple[int, int]) -> list[PriorGrid]:
        """Prior grids of the shots of :meth:`forward_shots`, in the same order."""
        size = tuple(image_size)
        second = self.prior_grid(size)
        if self.first_head is None:
            return [second]
        return [generate_prior_grid(self.first_shot_spec, size, self.feature_sizes(size)), second]
