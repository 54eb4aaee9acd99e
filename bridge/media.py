"""Slack attachments as MMS: shrink pictures for CRM Text and sign the links that serve them.

CRM Text's ``mmsurl`` must be a public http(s) URL of a .jpg/.gif/.png of at most 450 KB
(crmtext-api.md §4 "MMS"). :func:`check_file` refuses a Slack file from its size and type before
it is downloaded; :func:`prepare_image` checks the pixel budget before decoding and re-encodes
every picture without metadata, small enough to fit; :func:`media_url` builds an expiring
HMAC-signed ``/media/...`` link and :func:`verify` checks one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

MAX_MMS_BYTES = 450_000
MAX_SIDE = 1600
QUALITIES = (85, 70, 55, 40)
SHRINK = 0.8
MIN_SIDE = 64

# Budgets, checked before anything is decoded (the header gives the size): a picture's pixels
# decide the memory its decoding takes, not its file size (a 38-byte WebP can be 9400 × 9400).
# A JPEG is decoded at 1/2, 1/4 or 1/8 scale straight to about MAX_SIDE (``Image.draft``), so
# it may have more pixels than the others, which are decoded whole.
PIXEL_BUDGET = 24_000_000
JPEG_PIXEL_BUDGET = 50_000_000  # a 48-50 megapixel phone photo
MAX_FILE_BYTES = 25 * 1024 * 1024  # a staff attachment is not downloaded past this

# Raster formats we accept. Never EPS/PS: Pillow hands those to Ghostscript.
READ_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
PICTURE_TYPES = frozenset(
    {"image/jpeg", "image/pjpeg", "image/png", "image/gif", "image/webp", "image/bmp"}
    | {"image/tiff", "image/x-ms-bmp"}
)
KEEP_FORMAT = {  # small enough pictures keep their format (re-encoded without metadata)
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
}
EXTENSIONS = frozenset({"jpg", "png", "gif"})

NOT_A_PICTURE = "That file is not a picture we can text. Please attach a JPEG, PNG or GIF."
TOO_LARGE = "That picture is too large to process. Please attach a smaller one."
DAMAGED = "That picture appears to be damaged and cannot be sent by text."
CANNOT_SHRINK = "That picture could not be made small enough to send by text."


def too_many_pixels(width: int, height: int, budget: int) -> str:
    return (
        f"That picture is too large to process ({width:,} × {height:,} pixels; the most is "
        f"{budget // 1_000_000} million). Please attach a smaller one."
    )


def too_many_bytes(size: int | None) -> str:
    most = MAX_FILE_BYTES // (1024 * 1024)
    what = f"{size / (1024 * 1024):.0f} MB" if size else f"over {most} MB"
    return (
        f"That file is too big to send ({what}; the most is {most} MB). "
        "Please attach a smaller picture."
    )


class MediaError(ValueError):
    """An attachment that cannot go out as MMS; the message is a plain sentence for staff."""


@dataclass(frozen=True)
class PreparedImage:
    """Picture bytes ready for CRM Text."""

    data: bytes
    content_type: str  # image/jpeg | image/png | image/gif
    extension: str  # jpg | png | gif
    width: int
    height: int


def check_file(size: object, mimetype: object) -> None:
    """Refuse a Slack file from what Slack says about it, before downloading it: a type that
    is not a picture we read, or more than MAX_FILE_BYTES. Unknown values pass (the download
    is capped and the bytes are identified anyway)."""
    kind = str(mimetype or "").split(";")[0].strip().lower()
    if kind and kind not in PICTURE_TYPES:
        raise MediaError(NOT_A_PICTURE)
    if isinstance(size, int) and size > MAX_FILE_BYTES:
        raise MediaError(too_many_bytes(size))


def prepare_image(data: bytes, max_bytes: int = MAX_MMS_BYTES) -> PreparedImage:
    """A picture for CRM Text, always re-encoded (no EXIF, GPS, camera owner, comments or
    profiles go to customers): a small PNG or GIF stays one, anything else becomes a JPEG of at
    most MAX_SIDE pixels a side and ``max_bytes``. The pixel budget is checked from the header
    before anything is decoded."""
    try:
        img = Image.open(io.BytesIO(data), formats=READ_FORMATS)  # reads the header only
    except UnidentifiedImageError:
        raise MediaError(NOT_A_PICTURE) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # The warning is only an exception where warnings are errors (our tests).
        raise MediaError(TOO_LARGE) from None
    except (OSError, ValueError, SyntaxError):
        raise MediaError(DAMAGED) from None
    with img:
        width, height = img.size
        jpeg = img.format in ("JPEG", "MPO")
        budget = JPEG_PIXEL_BUDGET if jpeg else PIXEL_BUDGET
        if width * height > budget:
            raise MediaError(too_many_pixels(width, height, budget))
        try:
            frames = getattr(img, "n_frames", 1) if img.format == "GIF" else 1  # no decoding
            kind = KEEP_FORMAT.get(img.format or "")
            if kind and len(data) <= max_bytes and width * height * frames <= budget:
                same, w, h = _gif(img) if img.format == "GIF" else _png(img)
                if len(same) <= max_bytes:
                    return PreparedImage(same, kind[0], kind[1], w, h)
            if jpeg:  # decode at the smallest scale that still gives MAX_SIDE
                img.draft("RGB", (MAX_SIDE, MAX_SIDE))
            img.seek(0)  # an animated GIF becomes its first frame
            rgb = _strip(_flatten(ImageOps.exif_transpose(img)), ())
        except (OSError, ValueError, SyntaxError, EOFError):
            raise MediaError(DAMAGED) from None
    rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    while True:
        for quality in QUALITIES:
            out = _jpeg(rgb, quality)
            if len(out) <= max_bytes:
                return PreparedImage(out, "image/jpeg", "jpg", rgb.width, rgb.height)
        if min(rgb.size) * SHRINK < MIN_SIDE:
            raise MediaError(CANNOT_SHRINK)
        size = (round(rgb.width * SHRINK), round(rgb.height * SHRINK))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)


def _strip(img: Image.Image, keep: tuple[str, ...] = ("transparency",)) -> Image.Image:
    """``img`` with only ``keep`` left in its info (no EXIF, XMP, ICC profile, text chunks or
    comments, which Pillow would otherwise write back)."""
    img.info = {k: img.info[k] for k in keep if k in img.info}
    return img


def _png(img: Image.Image) -> tuple[bytes, int, int]:
    clean = _strip(ImageOps.exif_transpose(img))  # a new image: turned upright, or a copy
    buf = io.BytesIO()
    clean.save(buf, format="PNG")
    return buf.getvalue(), clean.width, clean.height


def _gif(img: Image.Image) -> tuple[bytes, int, int]:
    """The GIF again, every frame, with only what animation needs (no comments, no XMP)."""
    frames = []
    for frame in ImageSequence.Iterator(img):
        frames.append(_strip(frame.copy(), ("transparency", "duration")))
    buf = io.BytesIO()
    first = frames[0]
    if len(frames) > 1:
        durations = [int(f.info.get("duration", 100)) for f in frames]
        first.save(
            buf,
            format="GIF",
            comment=b"",
            save_all=True,
            append_images=frames[1:],
            duration=durations,
            loop=0,
        )
    else:
        first.save(buf, format="GIF", comment=b"")
    return buf.getvalue(), first.width, first.height


def _flatten(img: Image.Image) -> Image.Image:
    """RGB copy of ``img``, with any transparency laid on white."""
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGB", rgba.size, "white")
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return img.convert("RGB")


def _jpeg(img: Image.Image, quality: int) -> bytes:
    """Encode as baseline JPEG. No EXIF, ICC or comments are written (nothing is passed on)."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


# --- Signed links -----------------------------------------------------------------------------

MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
FILENAME = re.compile(r"([A-Za-z0-9_-]{1,64})\.(jpg|png|gif)")
EXPIRES = re.compile(r"[1-9][0-9]{0,11}")  # canonical: no leading zeros
SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")


def media_secret(*parts: str) -> bytes:
    """Derive the link-signing key from existing secrets (e.g. the Slack signing secret)."""
    return hmac.new(b"smsbridge-media", "\0".join(parts).encode(), hashlib.sha256).digest()


def _sign(media_id: str, extension: str, expires: int, secret: bytes) -> str:
    message = f"{media_id}.{extension}:{expires}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_path(media_id: str, extension: str, expires: int, secret: bytes) -> str:
    """``/media/<expires>/<sig>/<media_id>.<ext>``; the path ends in .jpg/.png/.gif."""
    if not MEDIA_ID.fullmatch(media_id) or extension not in EXTENSIONS:
        raise ValueError(f"bad media id or extension: {media_id!r}.{extension!r}")
    sig = _sign(media_id, extension, expires, secret)
    return f"/media/{expires}/{sig}/{media_id}.{extension}"


def media_url(
    public_url: str,
    media_id: str,
    extension: str,
    *,
    secret: bytes,
    now: datetime,
    ttl: timedelta,
) -> str:
    """Absolute link valid for ``ttl`` from ``now`` (which must be timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    expires = int((now + ttl).timestamp())
    return public_url.rstrip("/") + signed_path(media_id, extension, expires, secret)


def verify(expires: str, signature: str, filename: str, secret: bytes, now: datetime) -> str | None:
    """The media id if the link is authentic and unexpired, else None. Never raises on input."""
    name = FILENAME.fullmatch(filename)
    if not (name and EXPIRES.fullmatch(expires) and SIGNATURE.fullmatch(signature)):
        return None
    media_id, extension = name.groups()
    expected = _sign(media_id, extension, int(expires), secret)
    if not hmac.compare_digest(expected, signature):
        return None
    if now.timestamp() >= int(expires):
        return None
    return media_id
