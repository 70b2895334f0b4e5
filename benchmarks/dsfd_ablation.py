"""DSFD ablation on face_slim at equal training budget: baseline, +IAM, +PAL, +FEM, all three.

Each variant trains from scratch with configs/face_slim.yaml and the same budget (``--epochs``), then is scored on
face_counting/val and timed as benchmarks/ablation.py describes. Resumable: rerun the same command.

    python benchmarks/dsfd_ablation.py --epochs 8 --parallel 2        # trains (about an hour on 2 cores)
    python benchmarks/dsfd_ablation.py --epochs 8 --report-only       # scores and times what is trained
    python benchmarks/dsfd_ablation.py --variants warm_baseline,warm_fem,warm_all --epochs 4 --out runs/dsfd_warm

Prints a markdown table, then one JSON line.
"""

from __future__ import annotations

from ablation import Variant, main

CONFIG = "configs/face_slim.yaml"
VARIANTS = {
    "baseline": Variant(CONFIG),
    "iam": Variant(CONFIG, ["data.augment.data_anchor_p=0.6"]),
    "pal": Variant(CONFIG, ["model.options.pal=true"]),
    "fem": Variant(CONFIG, ["model.options.fem=true"]),
    "all": Variant(CONFIG, ["data.augment.data_anchor_p=0.6", "model.options.pal=true", "model.options.fem=true"]),
}
# Warm start (the condition DSFD trains in: a trained backbone): the shipped face model fine-tuned further on the
# human labels, with the new modules (FEM, first-shot head) freshly initialised and everything else loaded.
WARM = "configs/experiments/face_slim_finetune_human.yaml"
WARM_FROM = ["model.weights=singleshot/weights/face_slim.pt", "model.weights_partial=true"]
VARIANTS.update({
    "warm_baseline": Variant(WARM, WARM_FROM),
    "warm_pal": Variant(WARM, [*WARM_FROM, "model.options.pal=true"]),
    "warm_fem": Variant(WARM, [*WARM_FROM, "model.options.fem=true"]),
    "warm_all": Variant(WARM, [*WARM_FROM, "data.augment.data_anchor_p=0.6", "model.options.pal=true",
                               "model.options.fem=true"]),
})

if __name__ == "__main__":
    main(__doc__.splitlines()[0], VARIANTS, out="runs/dsfd_ablation", epochs=8)
