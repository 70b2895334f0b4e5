"""Why a smile head that scores well on GENKI-4K's own test split does worse on other faces: the test crops degraded
one way at a time (grayscale, resolution, blur, JPEG, framing, rotation), and an end-to-end stand-in for photos of
another dataset (each crop grayscale, enlarged to 128 px in a 256 px canvas, through detection and the head).

    python benchmarks/smile_robustness.py [--attribute smile|CKPT] [--weights DETECTOR] [--points CKPT] [--no-head]
        [--json out.json] [--misses DIR] [--zooms 1.0,1.25,0.8] [--background 128] [--interpolation cubic]
        [--input-size 640] [--faces-only retinaface] [--thresholds 0.3,0.4,0.5,0.6,0.7]

``--zooms`` adds grey end-to-end rows whose crops were zoomed first (1.25: a tighter crop, the face's edges cut, as
in datasets cropped closer than GENKI-4K's Haar boxes; 0.8: looser, the border repeated). ``--misses DIR`` writes the end-to-end photos whose face was not found (grey ones), named by crop and best score,
and a contact sheet of them (``misses.jpg``): GENKI-4K's crops were cut by a Haar detector, and some are not faces.
``--genki DIR --split NAME`` reads the crops of ``DIR/NAME/{0,1}``: another labelled set's square crops too (MTFL's
AFLW faces, cut by ``singleshot attribute crops --data mtfl:ROOT --label smile``: ``--genki runs/crops/mtfl --split
aflw_square``), an off-domain stand-in with labels of its own. ``--background`` (the canvas's grey level, 128 by
default) and ``--interpolation`` (how the crop is enlarged: cubic by default, linear, nearest) vary how the photo
was made, which another dataset's photos need not share. ``--input-size`` is the detector's long side (640: a
256 px photo is enlarged 2.5 times, its face to about 320 px).

``--faces-only PEER`` keeps only the crops in which that peer detector (singleshot.peers, e.g. ``retinaface``)
finds a face at score >= 0.5, in the colour crop on the canvas at a 640 px long side: GENKI-4K's crops were cut
by a Haar detector and about 65 of its 1,200 test crops hold no face (a neck, a shirt, a wall), which end to end
count as errors whatever the head does, and which another set's face crops need not hold.

``--thresholds`` adds, to each end-to-end row, the accuracy at other decision thresholds (a face not found
still counts as wrong).

Accuracy is at the head's decision threshold (0.5 unless the checkpoint stores one); ROC AUC does not depend on it.
End to end, a crop whose face is not found at score >= 0.5 counts as wrong in the accuracy (``found`` says how many
were found) and scores 0.5 for the AUC.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from singleshot.attributes.classifier import AttributeClassifier
from singleshot.attributes.data import load_crop_folder, read_exclude_list, reframe
from singleshot.attributes.model import predict_crops
from singleshot.attributes.training import roc_auc

GENKI = Path(__file__).resolve().parents[2] / "shared/data/smile/genki4k_faces64"


def gray(crop: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return np.repeat(g[..., None], 3, axis=2)


def resolution(side: int) -> Callable[[np.ndarray], np.ndarray]:
    def degrade(crop: np.ndarray) -> np.ndarray:
        small = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, crop.shape[:2][::-1], interpolation=cv2.INTER_LINEAR)
    return degrade


def blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda crop: cv2.GaussianBlur(crop, (0, 0), sigma)


def jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def degrade(crop: np.ndarray) -> np.ndarray:
        _ok, data = cv2.imencode(".jpg", crop[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
    return degrade


def framing(scale: float, angle: float = 0.0) -> Callable[[np.ndarray], np.ndarray]:
    """Zoom (scale < 1: a looser crop, the border replicated; > 1: tighter) and rotate about the centre."""
    return lambda crop: reframe(crop, scale, angle)


DEGRADATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda crop: crop,
    "grayscale": gray,
    "32 px": resolution(32),
    "24 px": resolution(24),
    "blur sigma 1.5": blur(1.5),
    "JPEG q 20": jpeg(20),
    "looser crop (0.8x zoom)": framing(0.8),
    "tighter crop (1.2x zoom)": framing(1.2),
    "rotated 15 deg": framing(1.0, 15.0),
    "grayscale + 32 px": lambda crop: gray(resolution(32)(crop)),
}


INTERPOLATIONS = {"cubic": cv2.INTER_CUBIC, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


def canvas(crop: np.ndarray, face_px: int = 128, side: int = 256, grayscale: bool = True, background: int = 128,
           interpolation: str = "cubic") -> np.ndarray:
    """The end-to-end stand-in: the crop enlarged to ``face_px`` (``interpolation``) and centred on a ``side``
    canvas of grey level ``background`` (mid-grey by default)."""
    face = cv2.resize(gray(crop) if grayscale else crop, (face_px, face_px),
                      interpolation=INTERPOLATIONS[interpolation])
    out = np.full((side, side, 3), background, np.uint8)
    o = (side - face_px) // 2
    out[o:o + face_px, o:o + face_px] = face
    return out


def write_misses(folder: Path, missed: list[tuple[str, np.ndarray]], detector) -> None:
    """Each photo with its best score below 0.5 in the name, and a contact sheet of all of them (8 a row)."""
    folder.mkdir(parents=True, exist_ok=True)
    tiles = []
    for name, image in missed:
        scores = detector.detect(image, min_score=0.05).scores.numpy()
        best = float(scores.max()) if len(scores) else 0.0
        cv2.imwrite(str(folder / f"{Path(name).stem}_best{best:.2f}.png"), image[..., ::-1])
        tile = cv2.resize(image[64:192, 64:192], (96, 96))
        cv2.putText(tile, f"{best:.2f}", (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
        tiles.append(tile)
    while tiles and len(tiles) % 8:
        tiles.append(np.zeros_like(tiles[0]))
    if tiles:
        sheet = np.vstack([np.hstack(tiles[i : i + 8]) for i in range(0, len(tiles), 8)])
        cv2.imwrite(str(folder / "misses.jpg"), sheet[..., ::-1])
    print(f"  {len(missed)} grey photos with no face at 0.5 written to {folder} (contact sheet misses.jpg)")


def faces_only(crops: np.ndarray, labels: np.ndarray, names: list[str], peer_name: str, background: int,
               interpolation: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The crops in which ``peer_name`` finds a face at >= 0.5 (colour crop on the canvas, 640 px long side)."""
    from singleshot.peers import create_peer, detect_resized

    peer = create_peer(peer_name, score_threshold=0.5)
    peer.set_threads(2)
    keep = np.array([len(detect_resized(peer, canvas(c, grayscale=False, background=background,
                                                     interpolation=interpolation), long_side=640)[1]) > 0
                     for c in crops], bool)
    print(f"  {peer_name} finds a face in {int(keep.sum())} of {len(keep)} crops; the others are left out")
    return crops[keep], labels[keep], [n for n, k in zip(names, keep) if k]


def score(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    return {"accuracy": float(((probs >= threshold) == labels).mean()), "auc": float(roc_auc(probs, labels))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attribute", default="smile", help="attribute name or checkpoint")
    parser.add_argument("--weights", default=None, help="detector weights for the end-to-end part (default: bundled)")
    parser.add_argument("--points", default="auto", help="point network for aligned heads (default: the bundled one)")
    parser.add_argument("--genki", default=str(GENKI))
    parser.add_argument("--split", default="test")
    parser.add_argument("--no-end-to-end", action="store_true")
    parser.add_argument("--no-head", action="store_true", help="skip the head-alone degradations")
    parser.add_argument("--json", default=None)
    parser.add_argument("--zooms", default="1.0",
                        help="end to end, also grey crops zoomed before the canvas, e.g. 1.0,1.25,0.8 (> 1: tighter)")
    parser.add_argument("--misses", default=None, help="folder for the grey end-to-end photos with no face found")
    parser.add_argument("--background", type=int, default=128, help="end to end, the canvas's grey level (0-255)")
    parser.add_argument("--input-size", type=int, default=640,
                        help="end to end, the detector's long side (640, its default: a 256 px photo is enlarged)")
    parser.add_argument("--interpolation", choices=sorted(INTERPOLATIONS), default="cubic",
                        help="end to end, how the crop is enlarged to 128 px")
    parser.add_argument("--thresholds", default="",
                        help="end to end, also the accuracy at these decision thresholds, e.g. 0.3,0.4,0.5,0.6,0.7")
    parser.add_argument("--faces-only", default=None, metavar="PEER",
                        help="keep the crops in which this peer detector (e.g. retinaface) finds a face at >= 0.5")
    args = parser.parse_args(argv)
    if not 0 <= args.background <= 255:
        parser.error(f"--background: a grey level 0-255, got {args.background}")
    try:
        thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
    except ValueError:
        parser.error(f"--thresholds: comma-separated numbers, got {args.thresholds!r}")

    head = AttributeClassifier(args.attribute, threads=2)
    threshold = float(head.metrics.get("threshold", 0.5))
    listed = Path(args.genki) / "suspect_duplicates.txt"  # GENKI-4K's duplicates; another set may have none
    exclude = read_exclude_list(listed) if listed.is_file() else set()
    crops, labels, names = load_crop_folder(Path(args.genki) / args.split, exclude, 64)
    if args.faces_only:
        from singleshot.peers import PeerUnavailableError

        try:
            crops, labels, names = faces_only(crops, labels, names, args.faces_only, args.background,
                                              args.interpolation)
        except (PeerUnavailableError, KeyError) as err:
            parser.error(f"--faces-only: {err.args[0]}")
    crops_in = crops if head.input_size == 64 else np.stack(
        [cv2.resize(c, (head.input_size,) * 2, interpolation=cv2.INTER_LINEAR) for c in crops])
    result: dict = {"attribute": str(head.weights), "threshold": threshold, "crops": len(labels), "head": {}}
    print(f"{head.weights}: {len(labels)} crops of {Path(args.genki) / args.split}, threshold {threshold:.3f}")
    for name, degrade in ({} if args.no_head else DEGRADATIONS).items():
        batch = np.stack([degrade(c) for c in crops_in])
        probs = predict_crops(head.net, batch, head.mean_rgb, head.std_rgb, flip_tta=head.flip_tta)
        result["head"][name] = score(probs, labels, threshold)
        print(f"  head alone, {name:26s} accuracy {result['head'][name]['accuracy']:.3f}  "
              f"AUC {result['head'][name]['auc']:.3f}")
    if not args.no_end_to_end:
        from singleshot.predictor import Detector

        detector = Detector(args.weights, threads=2, points=args.points, input_size=args.input_size)
        missed: list[tuple[str, np.ndarray]] = []
        zooms = [float(z) for z in args.zooms.split(",")]
        for zoom, grayscale in [(1.0, True), (1.0, False)] + [(z, True) for z in zooms if z != 1.0]:
            probs = np.full(len(labels), 0.5, np.float32)
            found = np.zeros(len(labels), bool)
            for i, crop in enumerate(crops):
                image = canvas(crop if zoom == 1.0 else framing(zoom)(crop), grayscale=grayscale,
                               background=args.background, interpolation=args.interpolation)
                faces = detector.detect(image, min_score=0.5, attributes=[str(head.weights)])
                if len(faces.scores):  # the most confident face: the photo holds one
                    best = int(np.argmax(faces.scores.numpy()))
                    probs[i] = float(faces.attributes[head.name][best])
                    found[i] = True
                elif grayscale and zoom == 1.0 and args.misses:
                    missed.append((names[i], image))
            key = "end to end, " + ("grayscale" if grayscale else "colour") + " 128 px face in 256 px"
            if zoom != 1.0:
                key += f", crop zoomed {zoom:g}x ({'tighter' if zoom > 1 else 'looser'})"
            row = score(probs, labels, threshold)
            row["accuracy"] = float((((probs >= threshold) == labels) & found).mean())
            row["found"] = int(found.sum())
            row["accuracy_found"] = float(((probs >= threshold) == labels)[found].mean()) if found.any() else 0.0
            result[key] = row
            print(f"  {key}: found {row['found']}/{len(labels)}, accuracy {row['accuracy']:.3f} "
                  f"(on found faces {row['accuracy_found']:.3f}), AUC {row['auc']:.3f}")
            if thresholds:
                row["accuracy_at"] = {t: float((((probs >= t) == labels) & found).mean()) for t in thresholds}
                print("    accuracy at " + " / ".join(f"{t:g}: {a:.3f}" for t, a in row["accuracy_at"].items()))
        if args.misses:
            write_misses(Path(args.misses), missed, detector)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
