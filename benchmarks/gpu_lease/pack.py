"""Pack the face data for a lent GPU machine: tar.gz chunks that each fit one call of the device tool.

The device tool carries at most 64 MiB of working tree per call and ``../shared`` does not travel, so the
training photos go over in chunks, each carried by one call and unpacked next to the checkout there
(``tar xzf CHUNK -C ..`` recreates ``../shared/data/...``). Chunks 1..N-1 hold what stage 1 needs (face_counting
train + val, face_mask), the last one the unlabelled photos and the kindled labels stage 2 adds. Files keep their
bytes (no re-encoding).

    python benchmarks/gpu_lease/pack.py --out .devdata      # .devdata must be git-ignored (.git/info/exclude)
"""

from __future__ import annotations

import argparse
import os
import tarfile
from pathlib import Path

STAGE1 = ["faces/face_counting/train", "faces/face_counting/val", "faces/face_mask"]
STAGE2 = ["unlabeled/face_counting_test"]


def files_under(root: Path, subdirs: list[str]) -> list[Path]:
    found = []
    for sub in subdirs:
        folder = root / sub
        if not folder.is_dir():
            raise SystemExit(f"{folder}: not found (is --shared the shared folder?)")
        found += [Path(dp) / f for dp, _, names in os.walk(folder) for f in names]
    return found


def balance(paths: list[Path], limit: int) -> list[list[Path]]:
    """Split ``paths`` into the fewest chunks of at most ``limit`` bytes (largest first into the emptiest)."""
    paths = sorted(paths, key=lambda p: -p.stat().st_size)
    count = max(1, -(-sum(p.stat().st_size for p in paths) // limit))
    while True:
        bins: list[list[Path]] = [[] for _ in range(count)]
        sizes = [0] * count
        for path in paths:
            i = sizes.index(min(sizes))
            bins[i].append(path)
            sizes[i] += path.stat().st_size
        if max(sizes) <= limit:
            return bins
        count += 1


def write_chunk(target: Path, paths: list[Path], shared: Path, extra: dict[str, Path] | None = None) -> None:
    with tarfile.open(target, "w:gz", compresslevel=1) as tar:
        for path in sorted(paths):
            tar.add(path, arcname=str(Path("shared") / path.relative_to(shared)))
        for arcname, path in (extra or {}).items():
            tar.add(path, arcname=arcname)
    print(f"{target}: {target.stat().st_size / 1e6:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default="../shared", help="the shared folder (holds data/)")
    parser.add_argument("--kindled", default="runs/kindled/face_counting_test_rf/boxes.csv",
                        help="kindled labels of the unlabelled photos (singleshot kindle)")
    parser.add_argument("--out", default=".devdata", help="where the chunks go (a git-ignored folder)")
    parser.add_argument("--max-mb", type=float, default=58.0, help="largest chunk, MB (the tree adds ~4 MB)")
    args = parser.parse_args()
    shared = Path(args.shared).resolve()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    limit = int(args.max_mb * 1e6)
    bins = balance(files_under(shared / "data", STAGE1), limit)
    for i, paths in enumerate(bins, 1):
        write_chunk(out / f"c{i}.tgz", paths, shared)
    kindled = Path(args.kindled)
    if not kindled.is_file():
        raise SystemExit(f"{kindled}: not found; stage 2 needs it (run singleshot kindle first, docs/kindling.md)")
    stage2 = balance(files_under(shared / "data", STAGE2), limit - kindled.stat().st_size)
    for j, paths in enumerate(stage2):
        extra = {"shared/kindled_rf_boxes.csv": kindled} if j == len(stage2) - 1 else None
        write_chunk(out / f"c{len(bins) + j + 1}.tgz", paths, shared, extra)
    print(f"stage 1 needs c1..c{len(bins)}; stage 2 also c{len(bins) + 1}..c{len(bins) + len(stage2)}")


if __name__ == "__main__":
    main()
