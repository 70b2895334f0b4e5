"""Checks on an uploaded photo before and while it is decoded (``POST /detect``).

Every refusal is an :class:`UploadError` carrying the HTTP status the server answers with, so a bad upload costs a
4xx and a one-line message, never a 500 or a stuck worker. The order matters: the cheap checks (content type, byte
count, the size written in the file's header) run before any pixel is decoded, because a few hundred kilobytes of
PNG can declare 20000x20000 pixels (1.2 GB once decoded).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from singleshot.errors import SingleshotError
from singleshot.images import ImageError, ImageHeader, PixelLimitError, check_pixels, orient
from singleshot.images import read_header as read_image_header

#: Content types accepted for the ``image`` part; anything else is refused with 415. ``application/octet-stream``
#: is what many clients send when they do not know the type; the header decides then.
ACCEPTED_TYPES = ("image/", "application/octet-stream")


class UploadError(SingleshotError):
    """An upload the server refuses; ``status`` is the HTTP status code (4xx) of the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may weigh: ``max_bytes`` on the wire, ``max_pixels`` (width x height) once decoded."""

    max_bytes: int = 16 * 1024 * 1024
    max_pixels: int = 64_000_000


def check_content_type(content_type: str | None) -> None:
    """Refuse (415) a part whose declared type is not an image (``text/plain``, ``application/pdf``, ...)."""
    kind = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if not kind.startswith(ACCEPTED_TYPES):
        raise UploadError(415, f"unsupported content type {kind!r}: send a JPEG, PNG, BMP, WebP or TIFF photo")


def check_size(data: bytes, limits: UploadLimits) -> None:
    """Refuse an empty upload (400) or one over ``limits.max_bytes`` (413)."""
    if not data:
        raise UploadError(400, "the image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise UploadError(413, f"the image is larger than the limit of {limits.max_bytes} bytes")


def read_header(data: bytes, limits: UploadLimits) -> ImageHeader:
    """The file's header (upright size, EXIF orientation) without decoding pixels, read as every other reader of
    singleshot reads it (:func:`singleshot.images.read_header`); refuses non-images (400) and images over
    ``limits.max_pixels`` (413)."""
    try:
        header = read_image_header(data, limits.max_pixels)
        check_pixels(header, limits.max_pixels)
    except PixelLimitError as err:
        if not err.width:  # the decoder refused before giving the size: only the count is known
            raise UploadError(413, f"the image has {err.pixels} pixels, over the limit of {limits.max_pixels}") from None
        raise UploadError(413, f"the image is {err.width}x{err.height} = {err.pixels} pixels, over the limit of "
                               f"{limits.max_pixels}") from None
    except ImageError:
        raise UploadError(400, "not an image (or a format that cannot be read): send a JPEG, PNG, BMP, WebP or "
                               "TIFF photo") from None
    return header


def decode(data: bytes, limits: UploadLimits) -> np.ndarray:
    """The photo as ``(H, W, 3)`` RGB uint8, turned upright by its EXIF orientation as browsers show it (and as
    ``singleshot detect`` and the datasets read photos); a truncated or corrupt file is refused (400) instead of
    being decoded into a partly grey image."""
    header = read_header(data, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the header check above decided
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UploadError(400, f"the image is corrupt or truncated ({str(err).splitlines()[0][:120]})") from None
    return orient(rgb, header.orientation)
