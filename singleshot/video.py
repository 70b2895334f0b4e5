"""Detection on every frame of a video file or a camera (the loop behind ``singleshot detect clip.mp4``)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from singleshot.errors import SingleshotError

#: File suffixes ``singleshot detect`` treats as videos.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


class VideoError(SingleshotError):
    """A video source that cannot be opened or written; the message names it."""


@dataclass
class VideoReport:
    """What :func:`detect_video` did: frames run, detections, seconds in ``detect`` (decode excluded)."""

    name: str
    frames: int
    detections: int
    seconds: float
    video: Path | None  # the annotated video written (None with ``show``)


def is_video_source(source: str) -> bool:
    """A camera index (``"0"``) or a file with a video suffix."""
    return source.isdigit() or Path(source).suffix.lower() in VIDEO_SUFFIXES


def detect_video(
    detector,
    source: str,
    out: str | Path,
    predictions: dict[str, np.ndarray],
    *,
    max_frames: int | None = None,
    show: bool = False,
    **detect_options,
) -> VideoReport:
    """Run ``detector`` (a :class:`~singleshot.predictor.Detector`) on every frame of ``source``.

    Args:
        source: a video file, or a camera index as a string (``"0"``).
        out: folder for ``NAME.mp4``, the annotated video (not written with ``show``).
        predictions: filled with ``"NAME/000001"`` -> ``(K, 6)`` rows per frame, in frame pixels.
        max_frames: stop after this many frames (None: the whole video; a camera until Esc, q or Ctrl-C).
        show: show the annotated frames in a window instead of writing a video (needs an OpenCV with a GUI).
        detect_options: passed to ``detector.detect`` (``min_score``, ``attributes``...).

    Raises:
        VideoError: the source cannot be opened, the window cannot be shown, or the video cannot be written.
    """
    from singleshot.predictor import draw_detections

    camera = source.isdigit()
    name = f"camera{source}" if camera else Path(source).stem
    capture = cv2.VideoCapture(int(source) if camera else source)
    if not capture.isOpened():
        raise VideoError(f"{'camera ' + source if camera else source}: cannot open the video source")
    fps_in = capture.get(cv2.CAP_PROP_FPS) or 25.0
    target = Path(out) / f"{name}.mp4"
    writer, frames, faces, seconds = None, 0, 0, 0.0
    try:
        while max_frames is None or frames < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            start = time.perf_counter()
            det = detector.detect(rgb, **detect_options)
            seconds += time.perf_counter() - start
            frames += 1
            faces += len(det)
            predictions[f"{name}/{frames:06d}"] = det.to_rows()
            annotated = draw_detections(rgb, det, detector.class_names)
            if show:
                if not _show(name, annotated):
                    break
                continue
            if writer is None:
                h, w = annotated.shape[:2]
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps_in, (w, h))
                if not writer.isOpened():
                    raise VideoError(f"{target}: OpenCV cannot write an mp4 video here")
            writer.write(annotated)
            if frames % 30 == 0:
                print(f"{name}: {frames} frames, {frames / seconds:.1f} FPS (decode excluded)", file=sys.stderr)
    except KeyboardInterrupt:  # a camera runs until stopped: keep what was done
        print(f"{name}: stopped after {frames} frames", file=sys.stderr)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return VideoReport(name, frames, faces, seconds, None if show else target)


def _show(name: str, annotated_bgr: np.ndarray) -> bool:
    """Show one frame; False when the user asked to stop (Esc or q)."""
    try:
        cv2.imshow(f"singleshot: {name}", annotated_bgr)
    except cv2.error:
        raise VideoError("--show needs an OpenCV build with a GUI (opencv-python, not -headless)") from None
    return (cv2.waitKey(1) & 0xFF) not in (27, ord("q"))
