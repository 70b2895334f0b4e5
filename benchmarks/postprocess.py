"""SSD300-VGG16 (21 classes, batch 1): network forward time vs post-processing time.

Post-processing (decode, softmax, min_score, per-class pre-NMS top-k, class-aware NMS, top_k) runs at the SSD
tutorial's evaluation settings: min_score=0.01, max_overlap=0.45, top_k=200. The network has random weights, the
worst case for post-processing: nearly every class score of every prior clears min_score, so every NMS group is
full. Prints one JSON line last: ``{"forward_ms", "postprocess_ms", "ratio", ...}``.
Usage: python benchmarks/postprocess.py [--threads 2] [--repeats 10]
"""

from __future__ import annotations

import argparse

import torch
from common import emit, median_ms, set_threads

from singleshot import create_model, postprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--pre-nms-top-k", type=int, default=400)
    args = parser.parse_args()
    set_threads(args.threads)
    torch.manual_seed(0)

    model = create_model("ssd300_vgg16", num_classes=21).eval()
    h, w = model.input_size
    image = torch.randn(1, 3, h, w)
    priors = model.priors()
    with torch.no_grad():
        loc, conf = model(image)
        forward_ms = median_ms(lambda: model(image), args.repeats)

    def post():
        return postprocess(
            loc, conf, priors, (h, w), min_score=0.01, max_overlap=0.45, top_k=200, pre_nms_top_k=args.pre_nms_top_k
        )

    postprocess_ms = median_ms(post, args.repeats)
    detections = post()[0]
    candidates = int((conf.softmax(-1)[0, :, 1:] >= 0.01).sum())
    emit(
        {
            "model": "ssd300_vgg16",
            "input": f"{h}x{w}",
            "threads": args.threads,
            "candidates_above_min_score": candidates,
            "detections": len(detections),
            "forward_ms": forward_ms,
            "postprocess_ms": postprocess_ms,
            "ratio": postprocess_ms / forward_ms,
        }
    )


if __name__ == "__main__":
    main()
