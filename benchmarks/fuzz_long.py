"""Long fuzzing runs outside CI: the property-based fuzz tests with many fresh mutants per reader.

CI runs 150 fixed mutants per reader (a second or so each). This draws ``--examples`` new mutants per reader on
every run (hypothesis, random seeds), over every dataset format reader, the predictions JSON and WIDER submission
readers, the config loader and the image header reader; a failure prints the smallest mutant hypothesis finds, to
be added as a fixed case. Readers run one after another so a run's time is about ``examples / 150`` seconds per
reader on an idle core.

Prints one JSON line last: ``{"examples": N, "seconds": S, "exit_code": 0}`` (0: no reader failed).
Usage: python benchmarks/fuzz_long.py [--examples 20000] [-k coco]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ_TESTS = [
    "tests/data/formats/test_fuzz.py",
    "tests/evaluation/test_fuzz.py",
    "tests/test_config_fuzz.py",
    "tests/test_images.py::test_mutated_images_give_a_header_and_pixels_or_one_error",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000, help="mutants per reader (20000)")
    parser.add_argument("-k", dest="select", default="", help="only the readers whose test id matches (pytest -k)")
    args = parser.parse_args()
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *FUZZ_TESTS]
    if args.select:
        command += ["-k", args.select]
    start = time.perf_counter()
    # the fuzz tests read the count from the environment (tests/fuzzing.py): fixed mutants in CI, fresh ones here
    code = subprocess.run(command, cwd=ROOT, env={**os.environ, "SINGLESHOT_FUZZ_EXAMPLES": str(args.examples)},
                          check=False).returncode
    print(json.dumps({"examples": args.examples, "seconds": round(time.perf_counter() - start, 1),
                      "exit_code": code}))
    return code


if __name__ == "__main__":
    sys.exit(main())
