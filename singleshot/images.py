"""Reading photos safely and the same way everywhere: the header first, then the pixels, upright.

Every image singleshot reads (``detect``, datasets, the image cache, sizes taken from headers, ``serve`` uploads)
goes through :func:`read_header` before a single pixel is decoded, because a few hundred bytes of PNG can declare
20000x20000 pixels (1.2 GB once decoded): images over the pixel limit are refused from their header, or, for a JPEG
whose 1/2, 1/4 or 1/8 scale decode fits, decoded reduced where the caller allows it (libjpeg scales while it
decodes, so memory is bounded by the reduced size). The EXIF orientation (tag 274) is applied here too, so a phone
photo stored sideways is upright in detect, in training, in the cache and in the sizes read from headers alike
(orientations 5 to 8 swap width and height), as browsers and ``serve`` show it.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singleshot.errors import SingleshotError

#: Images with more pixels than this are refused (or, for JPEGs where allowed, decoded reduced) before decoding: a
#: 100-megapixel photo passes, a 20000x20000 PNG of 400 KB (1.2 GB once decoded) does not. The environment variable
#: ``SINGLESHOT_MAX_PIXELS`` (or ``--max-pixels``, which sets it) changes it; ``singleshot serve`` has its own, lower
#: upload limit (:class:`singleshot.serve.uploads.UploadLimits`).
DEFAULT_MAX_PIXELS = 150_000_000
MAX_PIXELS_VARIABLE = "SINGLESHOT_MAX_PIXELS"
#: How the limit is named in messages: where a user changes it.
_LIMIT_NAME = "SINGLESHOT_MAX_PIXELS or --max-pixels"
#: JPEG decoders scale by these factors while decoding (libjpeg's DCT scaling), never holding the full image.
_JPEG_REDUCTIONS = (2, 4, 8)
_EXIF_ORIENTATION = 0x0112


class ImageError(SingleshotError):
    """An image that cannot be read or is refused; ``reason`` is the phrase without the file name."""

    def __init__(self, reason: str, source: str | Path | None = None) -> None:
        super().__init__(f"{source}: {reason}" if source is not None else reason)
        self.reason = reason


class PixelLimitError(ImageError):
    """An image whose header declares more pixels than the limit; ``width`` and ``height`` are 0 when the decoder
    refused before giving them (only ``pixels`` is known then)."""

    def __init__(self, reason: str, source: str | Path | None, pixels: int, limit: int, width: int = 0,
                 height: int = 0) -> None:
        super().__init__(reason, source)
        self.pixels, self.limit, self.width, self.height = pixels, limit, width, height


def max_pixels() -> int:
    """The pixel limit in force: ``SINGLESHOT_MAX_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text))  # 150000000, 150_000_000 and 1.5e8 alike
    except ValueError:
        value = 0
    if value < 1:
        raise SingleshotError(f"{MAX_PIXELS_VARIABLE}={text!r}: expected a positive number of pixels, e.g. 150000000")
    return value


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, without decoding: the upright size (EXIF orientation applied), the
    orientation to apply to the stored pixels, and the format (``JPEG``, ``PNG``, ...)."""

    width: int
    height: int
    orientation: int = 1
    format: str = ""

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def is_jpeg(self) -> bool:
        return self.format in ("JPEG", "MPO")  # MPO: the multi-picture JPEG of many phones and cameras


def read_header(source: str | Path | bytes, limit: int | None = None) -> ImageHeader:
    """The header of an image file (a path or its bytes), without decoding pixels.

    Raises :class:`ImageError` (not found, not an image) and, only when the decoder itself refuses to open a file
    that is not a JPEG (above PIL's own bomb limit of about 179 MP), :class:`PixelLimitError` with the pixel count
    and ``limit`` (default :func:`max_pixels`); compare the result with a limit by :func:`check_pixels`.
    """
    from PIL import Image

    name = None if isinstance(source, bytes) else Path(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # check_pixels decides, not PIL's limit
            with Image.open(io.BytesIO(source) if name is None else name) as im:
                return _header_of(im)
    except FileNotFoundError:
        raise ImageError("not found", name) from None
    except Image.DecompressionBombError as err:  # PIL refuses over twice its own limit; its message has the count
        pixels = int(next(iter(re.findall(r"\((\d+) pixels\)", str(err))), "0"))
        header = _jpeg_header(source)  # a JPEG can still be decoded reduced: read its header past PIL's check
        if header is not None:
            return header
        limit = min(limit or max_pixels(), 2 * Image.MAX_IMAGE_PIXELS)
        raise PixelLimitError(f"declares {pixels / 1e6:.3g} MP, over the limit of {limit / 1e6:.3g} MP "
                              f"({_LIMIT_NAME}); refused before decoding", name, pixels, limit) from None
    except Exception:  # noqa: BLE001 - any unreadable header means "not an image we can bound"
        raise ImageError("not an image (unreadable header)", name) from None


def _header_of(im) -> ImageHeader:
    """The header of an opened PIL image: the EXIF orientation read from the header only (``getexif`` would
    decode a PNG whose EXIF follows its pixels; that one is not honoured anywhere, so all readers agree)."""
    from PIL import Image

    orientation = 1
    try:
        raw = im.info.get("exif")
        if raw:
            exif = Image.Exif()
            exif.load(raw)
            orientation = int(exif.get(_EXIF_ORIENTATION, 1))
        elif hasattr(im, "tag_v2"):  # TIFF keeps it among its own tags
            orientation = int(im.tag_v2.get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block: the pixels as stored, as browsers do
        orientation = 1
    orientation = orientation if 1 <= orientation <= 8 else 1
    w, h = im.size
    if w < 1 or h < 1:
        raise ValueError(f"the header says {w}x{h} pixels")
    return ImageHeader(h if orientation >= 5 else w, w if orientation >= 5 else h, orientation, im.format or "")


def _jpeg_header(source: str | Path | bytes) -> ImageHeader | None:
    """The header of a JPEG that PIL's ``open`` refused as a bomb (its reader used directly, which reads the
    header without that check), or None for any other format."""
    from PIL import JpegImagePlugin

    try:
        f = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115 - closed below
        with f:
            if f.read(3) != b"\xff\xd8\xff":
                return None
            f.seek(0)
            with JpegImagePlugin.JpegImageFile(f) as im:
                return _header_of(im)
    except Exception:  # noqa: BLE001 - then it is refused by its pixel count, as any other format
        return None


def check_pixels(header: ImageHeader, limit: int | None = None, reduce: bool = False,
                 source: str | Path | None = None) -> int:
    """The factor to decode ``header``'s image at (1: full size) under ``limit`` pixels (default
    :func:`max_pixels`); with ``reduce``, a JPEG over the limit gets the smallest of 2, 4, 8 that fits. Raises
    :class:`PixelLimitError` (naming ``source``) when none does."""
    limit = limit or max_pixels()
    if header.pixels <= limit:
        return 1
    if reduce and header.is_jpeg:
        for factor in _JPEG_REDUCTIONS:
            if -(-header.width // factor) * -(-header.height // factor) <= limit:
                return factor
    raise PixelLimitError(f"{header.width}x{header.height} pixels ({header.pixels / 1e6:.3g} MP) is over the limit of "
                          f"{limit / 1e6:.3g} MP ({_LIMIT_NAME}); refused before decoding", source, header.pixels,
                          limit, header.width, header.height)


def orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` (H, W, ...) as stored, turned upright by its EXIF ``orientation`` (1-8), as PIL's
    ``ImageOps.exif_transpose`` does; 5-8 swap height and width."""
    if orientation == 2:
        image = image[:, ::-1]
    elif orientation == 3:
        image = image[::-1, ::-1]
    elif orientation == 4:
        image = image[::-1]
    elif orientation == 5:
        image = image.swapaxes(0, 1)
    elif orientation == 6:
        image = image.swapaxes(0, 1)[:, ::-1]  # rotated 90 degrees clockwise
    elif orientation == 7:
        image = image.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        image = image.swapaxes(0, 1)[::-1]  # rotated 90 degrees counter-clockwise
    return np.ascontiguousarray(image)


def image_size(path: str | Path) -> tuple[int, int] | None:
    """Upright ``(height, width)`` of an image file from its header (no pixel decoding), or None if unreadable."""
    try:
        header = read_header(path)
    except ImageError:
        return None
    return header.height, header.width


def image_problem(path: str | Path, limit: int | None = None) -> str | None:
    """Why :func:`decode_image` refuses ``path`` without decoding it (one phrase), or None when it may decode."""
    try:
        check_pixels(read_header(path, limit), limit)
    except ImageError as err:
        return err.reason
    return None


def decode_image(path: str | Path, max_side: int | None = None, limit: int | None = None,
                 on_reduce: Callable[[str], None] | None = None) -> tuple[np.ndarray, tuple[int, int]] | None:
    """Read an image as upright RGB uint8 ``(h, w, 3)``, shrunk so its long side is at most ``max_side``.

    Returns ``(image, (original_height, original_width))`` (the upright size the header declares), or None if the
    file is missing, cannot be decoded, or declares more than ``limit`` pixels (default :func:`max_pixels`): the
    size is read before any decoding, so memory is bounded by the limit, not by the file (:func:`image_problem`
    says why). With ``on_reduce``, a JPEG over the limit is decoded at 1/2, 1/4 or 1/8 scale instead, and
    ``on_reduce`` receives a one-line note saying so; the image returned is then smaller than the original size.
    Large images are decoded at reduced resolution directly when ``max_side`` allows it (OpenCV's
    ``IMREAD_REDUCED_COLOR_2/4``), several times faster than a full decode and resize.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        return None
    try:
        header = read_header(path, limit)
        factor = check_pixels(header, limit, reduce=on_reduce is not None)
    except ImageError:
        return None
    if max_side:
        ratio = max(header.width, header.height) / max_side
        factor = max(factor, 4 if ratio >= 4 else 2 if ratio >= 2 else 1)
    flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}[factor]
    # the orientation is applied below from the header, so the decoded image and the header's size always agree
    image = cv2.imread(str(path), flag | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        return None
    stored = (header.height, header.width) if header.orientation < 5 else (header.width, header.height)
    if any(abs(got * factor - size) >= factor for got, size in zip(image.shape[:2], stored)):
        return None  # the decoder found another size than the header declared: neither bounds nor boxes would hold
    image = orient(image, header.orientation)
    h, w = image.shape[:2]
    if on_reduce is not None and header.pixels > (limit or max_pixels()):
        on_reduce(f"{header.width}x{header.height} pixels ({header.pixels / 1e6:.3g} MP) is over the limit of "
                  f"{(limit or max_pixels()) / 1e6:.3g} MP ({_LIMIT_NAME}); decoded at 1/{factor} scale ({w}x{h})")
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (header.height, header.width)
