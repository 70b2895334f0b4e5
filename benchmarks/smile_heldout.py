"""Attribute heads on the held-out part of their training crops and on the views of the same held-out faces (the
validation that chooses a head, in-domain and off-domain, without the test split).

    python benchmarks/smile_heldout.py --attribute smile checkpoints/smile_aligned_fer.pt [--seed 0]
        [--train runs/crops/genki_aligned_ours/train] [--views runs/crops/genki_view_grey_z09_14/train]

The held-out faces are those a training run with ``val_fraction`` 0.1 and ``seed`` left out (the same stratified
split): a head trained with another seed has seen them, so compare heads of one seed. Each head is scored at its
own decision threshold (folded into the saved network: 0.5), accuracy / ROC AUC.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from singleshot.attributes.classifier import AttributeClassifier
from singleshot.attributes.config import AttributeConfig
from singleshot.attributes.data import load_crop_folder, read_exclude_list
from singleshot.attributes.model import predict_crops
from singleshot.attributes.training import _score, _stratified_split, _train_views

GENKI = Path(__file__).resolve().parents[2] / "shared/data/smile/genki4k_faces64"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attribute", nargs="+", default=["smile"], help="attribute names or checkpoints")
    parser.add_argument("--train", default="runs/crops/genki_aligned_ours/train", help="the heads' training crops")
    parser.add_argument("--views", nargs="*", default=["runs/crops/genki_view_grey_z09_14/train"],
                        help="folders of views of the training faces (train_views)")
    parser.add_argument("--exclude", default=str(GENKI / "suspect_duplicates.txt"))
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    exclude = read_exclude_list(args.exclude)
    crops, labels, names = load_crop_folder(args.train, exclude, 64)
    kept, held = _stratified_split(labels, args.val_fraction, args.seed)
    views = rows = None
    if args.views:
        config = AttributeConfig(input_size=64, train_views=list(args.views))
        _, (views, rows) = _train_views(config, exclude, [names[i] for i in kept], [names[i] for i in held])
    print(f"{len(held)} held-out faces of {len(labels)} (seed {args.seed}); {0 if views is None else len(views)} views")
    results = []
    for attribute in args.attribute:
        head = AttributeClassifier(attribute, threads=2)
        row = {"attribute": attribute}
        row["held_out"] = _score(predict_crops(head.net, crops[held], head.mean_rgb, head.std_rgb,
                                               flip_tta=head.flip_tta), labels[held])
        text = f"held-out {row['held_out'][0]:.3f} / {row['held_out'][1]:.3f}"
        if views is not None:
            row["views"] = _score(predict_crops(head.net, views, head.mean_rgb, head.std_rgb, flip_tta=head.flip_tta),
                                  labels[held][rows.numpy()])
            text += f", their views {row['views'][0]:.3f} / {row['views'][1]:.3f}"
        print(f"  {attribute}: {text}")
        results.append(row)
    return results


if __name__ == "__main__":
    main()
