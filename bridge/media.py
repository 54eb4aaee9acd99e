"""Slack attachments as MMS: shrink pictures for CRM Text and sign the links that serve them.

CRM Text's ``mmsurl`` must be a public http(s) URL of a .jpg/.gif/.png of at most 450 KB
(crmtext-api.md §4 "MMS"). :func:`prepare_image` makes the bytes fit; :func:`media_url` builds an
expiring HMAC-signed ``/media/...`` link and :func:`verify` checks one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_MMS_BYTES = 450_000
MAX_SIDE = 1600
QUALITIES = (85, 70, 55, 40)
SHRINK = 0.8
MIN_SIDE = 64

# Raster formats we accept. Never EPS/PS: Pillow hands those to Ghostscript.
READ_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
PASS_THROUGH = {  # Pillow format -> (content type, extension); MPO is a JPEG with extra frames
    "JPEG": ("image/jpeg", "jpg"),
    "MPO": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
}
EXTENSIONS = frozenset({"jpg", "png", "gif"})

NOT_A_PICTURE = "That file is not a picture we can text. Please attach a JPEG, PNG or GIF."
TOO_LARGE = "That picture is too large to process. Please attach a smaller one."
DAMAGED = "That picture appears to be damaged and cannot be sent by text."
CANNOT_SHRINK = "That picture could not be made small enough to send by text."


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


def prepare_image(data: bytes, max_bytes: int = MAX_MMS_BYTES) -> PreparedImage:
    """Identify ``data`` with Pillow and return it unchanged if it fits, else as a smaller JPEG."""
    try:
        img = Image.open(io.BytesIO(data), formats=READ_FORMATS)
    except UnidentifiedImageError:
        raise MediaError(NOT_A_PICTURE) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # The warning is only an exception where warnings are errors (our tests); see below.
        raise MediaError(TOO_LARGE) from None
    except (OSError, ValueError, SyntaxError):
        raise MediaError(DAMAGED) from None
    with img:
        width, height = img.size
        limit = Image.MAX_IMAGE_PIXELS
        if limit and width * height > limit:  # Pillow only warned
            raise MediaError(TOO_LARGE)
        kind = PASS_THROUGH.get(img.format or "")
        if kind and len(data) <= max_bytes:
            return PreparedImage(data, kind[0], kind[1], width, height)
        try:
            img.seek(0)  # an animated GIF becomes its first frame
            rgb = _flatten(ImageOps.exif_transpose(img))
        except (OSError, ValueError, SyntaxError):
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
