"""Attribute heads on the held-out part of their training crops and on the views of the same held-out faces (the
validation that chooses a head, in-domain and off-domain, without the test split).

    python benchmarks/smile_heldout.py --attribute smile checkpoints/smile_aligned_fer.pt [--seed 0]
        [--train runs/crops/genki_aligned_ours/train] [--views runs/crops/genki_view_grey_z09_14/train]
        [--extra runs/crops/mtfl/net_aligned] [--other runs/crops/mtfl/aflw_aligned --other-square runs/crops/mtfl/aflw_square]

``--extra``: the ``extra_train`` folder of the heads (another dataset's labels): its held-out part, split as training
splits it, is scored too (a head that never learnt that set is scored on the same crops).

``--other``: a labelled set from another dataset (``0/``, ``1/``; e.g. MTFL's AFLW faces with their smile labels,
``singleshot attribute crops --data mtfl:ROOT --label smile --align face``), scored whole: the off-domain
validation with labels. Heads trained on square crops read ``--other-square`` (the same faces cut square).

The held-out faces are those a training run with ``val_fraction`` 0.1 and ``seed`` left out (the same stratified
split): a head trained with another seed has seen them, so compare heads of one seed. Each head is scored at its
own decision threshold (folded into the saved network: 0.5), on the crops read at its own input size, accuracy /
ROC AUC.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from singleshot.attributes.classifier import AttributeClassifier
from singleshot.attributes.config import AttributeConfig
from singleshot.attributes.data import load_crop_folder, read_exclude_list
from singleshot.attributes.model import predict_crops
from singleshot.attributes.training import _score, _stratified_split, _train_views

GENKI = Path(__file__).resolve().parents[2] / "shared/data/smile/genki4k_faces64"


def _scored(head: AttributeClassifier, crops: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Accuracy and ROC AUC of ``head`` on ``(N, S, S, 3)`` uint8 crops at its input size ``S``."""
    return _score(predict_crops(head.net, crops, head.mean_rgb, head.std_rgb, flip_tta=head.flip_tta), labels)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attribute", nargs="+", default=["smile"], help="attribute names or checkpoints")
    parser.add_argument("--train", default="runs/crops/genki_aligned_ours/train", help="the heads' training crops")
    parser.add_argument("--views", nargs="*", default=["runs/crops/genki_view_grey_z09_14/train"],
                        help="folders of views of the training faces (train_views)")
    parser.add_argument("--exclude", default=str(GENKI / "suspect_duplicates.txt"))
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra", default=None, metavar="DIR", help="the heads' extra_train folder")
    parser.add_argument("--other", default=None, metavar="DIR", help="labelled aligned crops of another dataset")
    parser.add_argument("--other-square", default=None, metavar="DIR", help="the same faces cut square")
    args = parser.parse_args(argv)

    exclude = read_exclude_list(args.exclude)
    sets: dict[int, dict] = {}

    def at_size(size: int) -> dict:
        """The crops read at a head's input size (the files resized as training resized them), once per size."""
        if size not in sets:
            s = sets[size] = {}
            crops, labels, names = load_crop_folder(args.train, exclude, size)
            kept, held = _stratified_split(labels, args.val_fraction, args.seed)
            s["faces"], s["held"], s["held_y"] = len(labels), crops[held], labels[held]
            s["views"] = s["views_y"] = None
            if args.views:
                config = AttributeConfig(input_size=size, train_views=list(args.views))
                _, (views, rows) = _train_views(config, exclude, [names[i] for i in kept], [names[i] for i in held])
                s["views"], s["views_y"] = views, labels[held][rows.numpy()]
            if args.extra:
                extra_x, extra_y, _ = load_crop_folder(args.extra, exclude, size)
                _, extra_held = _stratified_split(extra_y, args.val_fraction, args.seed)
                s["extra"], s["extra_y"] = extra_x[extra_held], extra_y[extra_held]
            s["others"] = {}  # another set's folder -> its crops and labels, read when a head first needs it
        return sets[size]

    results = []
    for attribute in args.attribute:
        head = AttributeClassifier(attribute, threads=2)
        s = at_size(head.input_size)
        if not results:
            print(f"{len(s['held'])} held-out faces of {s['faces']} (seed {args.seed}); "
                  f"{0 if s['views'] is None else len(s['views'])} views")
        row = {"attribute": attribute, "held_out": _scored(head, s["held"], s["held_y"])}
        text = f"held-out {row['held_out'][0]:.3f} / {row['held_out'][1]:.3f}"
        if s["views"] is not None:
            row["views"] = _scored(head, s["views"], s["views_y"])
            text += f", their views {row['views'][0]:.3f} / {row['views'][1]:.3f}"
        if args.extra:
            row["extra"] = _scored(head, s["extra"], s["extra_y"])
            text += f", {Path(args.extra).name} held-out {row['extra'][0]:.3f} / {row['extra'][1]:.3f}"
        other = args.other if head.align else args.other_square
        if other:
            if other not in s["others"]:
                s["others"][other] = load_crop_folder(other, set(), head.input_size)[:2]
            row["other"] = _scored(head, *s["others"][other])
            text += f", {Path(other).name} {row['other'][0]:.3f} / {row['other'][1]:.3f}"
        print(f"  {attribute}: {text}")
        results.append(row)
    return results


if __name__ == "__main__":
    main()
