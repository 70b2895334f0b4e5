"""Mutated copies of fixture files for the property-based parser tests (hypothesis).

A mutant is the fixture's bytes after a few edits drawn by hypothesis: bytes flipped, inserted or deleted, the
file cut short, a token swapped for a hostile one (a huge or negative number, NaN, a non-UTF-8 byte, an unclosed
quote or tag), a line repeated or dropped; or plain random bytes. Edits keep most of the structure, so the parser
gets past its first check and meets the damage deep inside, where a missed case hides.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).parent / "fixtures"

#: Bounded for CI: 150 mutants per reader, the same ones on every run, in about a second (deadline off: the first
#: call imports). A long search outside CI: SINGLESHOT_FUZZ_EXAMPLES=20000 draws that many new mutants per reader.
_LONG = int(os.environ.get("SINGLESHOT_FUZZ_EXAMPLES", "0"))


def fuzz_settings(ci_examples: int = 150) -> settings:
    """``ci_examples`` fixed mutants in CI (fewer for readers whose every call decodes), or the long run's count."""
    return settings(max_examples=_LONG or ci_examples, deadline=None, derandomize=not _LONG, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


FUZZ_SETTINGS = fuzz_settings()

_HOSTILE = [b"", b"-1", b"0", b"-0", b"1e309", b"-1e309", b"nan", b"inf", b"99999999999999999999", b"1e-320",
            b"\xff", b"\xfe\xff", b"\xc3", b"\x00", b"\"", b"'", b"<", b"</", b"]", b"{", b"[", b",", b"\n", b"\r",
            b"\t", b"null", b"true", b"[]", b"{}", b"a", b"../../etc/passwd", b"-", b"1.5", b"0x10", b"\xe9t\xe9"]
_TOKEN = re.compile(rb"[^\s,;:<>\"'=\[\]{}/]+")


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with 1 to 6 edits, or (one time in ten) random bytes of any length up to 2 KB."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=2048))
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "token", "line"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from(_HOSTILE)))
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "token":
            tokens = list(_TOKEN.finditer(bytes(data)))
            if tokens:
                t = tokens[draw(st.integers(0, len(tokens) - 1))]
                data[t.start() : t.end()] = draw(st.sampled_from(_HOSTILE))
        elif kind == "line":
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            if draw(st.booleans()):
                lines.insert(i, lines[i])
            else:
                del lines[i]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def copy_fixture(name: str, target: Path) -> Path:
    """A writable copy of ``tests/fixtures/NAME`` under ``target`` (images included)."""
    dest = target / name
    if not dest.exists():
        shutil.copytree(FIXTURES / name, dest)
    return dest


def assert_one_line(err: Exception) -> None:
    """What every refusal must be: a non-empty message on one line."""
    message = str(err)
    assert message and "\n" not in message, f"not one line: {message!r}"
