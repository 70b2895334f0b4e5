"""Off-domain and landmark figures of a face detector: Caltech WebFaces validation photos and MTFL's AFLW crops.

    python benchmarks/landmarks.py --caltech .data/caltech --mtfl .data/mtfl [--weights W] [--runtime ort]
    python benchmarks/landmarks.py --caltech .data/caltech --mtfl .data/mtfl --points runs/face_points/face_points.pt
    python benchmarks/landmarks.py --caltech .data/caltech --mtfl .data/mtfl --peer retinaface   # a peer instead

- Caltech (``caltech:ROOT``, ``split=val``: a fixed 10% of the photos by name hash, never trained on): the share of
  labelled faces a detection at score >= 0.5 covers (its box holds the eyes, nose and mouth centre), and for those
  the eye error of the detection's landmarks over the face size (:func:`singleshot.evaluation.landmarks.
  point_labelled_recall`).
- MTFL's AFLW part (``mtfl:ROOT``, ``split=test``, 2,995 80x80 crops in varied pose): each crop run at
  ``--crop-side`` px, the best detection's five points against the labels, normalised mean error by the
  inter-ocular distance and the failure rate at 0.1.

A model without a landmark head gets the share of faces found and NaN for the point errors. Prints one line per
figure and, last, the JSON of every figure. The data are outside the repository (docs/benchmarks.md says where).
"""

from __future__ import annotations

import argparse

from common import emit, set_threads


def main() -> None:
    import numpy as np

    from singleshot.checkpoint import bundled_weights
    from singleshot.data.formats import load_annotations
    from singleshot.evaluation.landmarks import best_points_per_crop, normalised_mean_error, point_labelled_recall
    from singleshot.inference import predict_dataset
    from singleshot.predictor import Detector

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--caltech", help="Caltech WebFaces root (WebFaces_GroundThruth.txt and the photos)")
    parser.add_argument("--mtfl", help="MTFL root (new_testing.txt and the AFLW crops)")
    parser.add_argument("--weights", default=None, help="checkpoint or ONNX file (default: the bundled model)")
    parser.add_argument("--runtime", default=None, choices=("torch", "ort", "opencv"))
    parser.add_argument("--long-side", type=int, default=640, help="inference long side for the Caltech photos")
    parser.add_argument("--crop-side", type=int, default=160, help="inference side for the 80x80 MTFL crops")
    parser.add_argument("--peer", default=None, help="score an installed peer detector instead (retinaface)")
    parser.add_argument("--points", default="auto",
                        help="point network for a model without a landmark head: auto (the bundled one), a point "
                             "checkpoint (singleshot points train), or off")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)
    figures: dict[str, float] = {}
    def make_detect(side: int, min_score: float):
        """A ``detect(list of images) -> list of Detections`` for our detector or the peer, at long side ``side``."""
        if args.peer:
            import torch

            from singleshot.peers import create_peer, detect_resized
            from singleshot.structures import Detections

            peer = create_peer(args.peer)
            peer.set_threads(args.threads)
            if hasattr(peer, "with_landmarks"):
                peer.with_landmarks = True

            def run_peer(images):
                out = []
                for image in images:
                    rows, scores = detect_resized(peer, image, side)
                    keep = scores >= min_score
                    rows, scores = torch.as_tensor(rows[keep]), torch.as_tensor(scores[keep])
                    out.append(Detections(rows[:, :4], scores, torch.ones(len(scores), dtype=torch.long),
                                          landmarks=rows[:, 4:].reshape(len(rows), (rows.shape[1] - 4) // 2, 2)
                                          if rows.shape[1] > 4
                                          else None))
                return out
            return run_peer
        detector = Detector(args.weights or bundled_weights(), input_size=side, threads=args.threads,
                            runtime=args.runtime, points=None if args.points == "off" else args.points)
        return lambda images: detector.detect(images, min_score=min_score)

    if args.caltech:
        data = load_annotations(f"caltech:{args.caltech}", split="val")
        predictions, _ = predict_dataset(make_detect(args.long_side, 0.3), data, batch_size=1, desc="caltech val")
        result = point_labelled_recall(data, predictions, min_score=0.5)
        figures.update({f"caltech_{k}": v for k, v in result.figures.items()})
        print(f"caltech val: {result.details['found_faces']} of {result.details['faces']} faces found "
              f"({result.figures['found']:.3f}); eye error / face size {result.figures['eye_error']:.4f}", flush=True)
    if args.mtfl:
        data = load_annotations(f"mtfl:{args.mtfl}", split="test")
        predictions, _ = predict_dataset(make_detect(args.crop_side, 0.05), data, batch_size=16, desc="mtfl aflw")
        keys = [s.key for s in data.samples]
        truth = np.stack([s.extra["landmarks"][0] for s in data.samples])
        result = normalised_mean_error(best_points_per_crop(predictions, keys), truth)
        figures.update({f"aflw_{k}": v for k, v in result.figures.items()})
        print(f"mtfl aflw at {args.crop_side} px: NME {result.figures['nme']:.4f}, failure rate "
              f"{result.figures['failure_rate']:.3f}, eye distance x{result.figures['eye_scale']:.3f} "
              f"({result.details['missing']} of {result.details['faces']} crops without points)", flush=True)
    emit({k: v if np.isfinite(v) else None for k, v in figures.items()})  # NaN (no landmark head) as JSON null


if __name__ == "__main__":
    main()
