"""Pictures for MMS (crmtext-api.md §4 "MMS": .jpg/.gif/.png, at most 450 KB) and signed links."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin

from bridge.media import (
    MAX_FILE_BYTES,
    MAX_MMS_BYTES,
    NOT_A_PICTURE,
    MediaError,
    check_file,
    media_secret,
    media_url,
    prepare_image,
    signed_path,
    verify,
)


def noise(size: tuple[int, int], mode: str = "RGB", seed: int = 1) -> Image.Image:
    """Random pixels, which no codec can compress."""
    nbytes = size[0] * size[1] * len(mode)
    return Image.frombytes(mode, size, random.Random(seed).randbytes(nbytes))


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def opened(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


# --- prepare_image ------------------------------------------------------------------------------


def test_big_png_is_shrunk_to_a_jpeg_under_the_limit() -> None:
    data = encode(noise((1200, 900)), "PNG")
    assert len(data) >= 2_000_000

    out = prepare_image(data)

    assert len(out.data) <= MAX_MMS_BYTES
    assert (out.content_type, out.extension) == ("image/jpeg", "jpg")
    img = opened(out.data)
    assert img.format == "JPEG"
    assert img.size == (out.width, out.height)
    assert out.width / out.height == pytest.approx(1200 / 900, rel=0.01)


def test_longest_side_is_capped_at_1600() -> None:
    data = encode(Image.new("RGB", (4000, 1000), "navy"), "BMP")
    out = prepare_image(data)
    assert (out.width, out.height) == (1600, 400)


def test_small_png_stays_png_with_the_same_pixels() -> None:
    original = noise((60, 40))
    out = prepare_image(encode(original, "PNG"))
    assert (out.content_type, out.extension, out.width, out.height) == ("image/png", "png", 60, 40)
    assert opened(out.data).tobytes() == original.tobytes()


def test_small_gif_stays_an_animated_gif() -> None:
    frames = [Image.new("RGB", (30, 20), c) for c in ("red", "lime", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    out = prepare_image(data)
    assert (out.content_type, out.extension) == ("image/gif", "gif")
    result = Image.open(io.BytesIO(out.data))
    assert (result.format, getattr(result, "n_frames", 1)) == ("GIF", 3)
    assert result.info["duration"] == 200


def test_animated_gif_over_the_limit_becomes_its_first_frame() -> None:
    frames = [Image.new("RGB", (40, 40), c) for c in ("red", "blue", "green")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    out = prepare_image(data, max_bytes=len(data) - 1)
    assert out.extension == "jpg"
    r, g, b = opened(out.data).getpixel((20, 20))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF"])
def test_other_formats_become_jpeg(fmt: str) -> None:
    out = prepare_image(encode(Image.new("RGB", (50, 30), "teal"), fmt))
    assert (out.content_type, out.extension, out.width, out.height) == ("image/jpeg", "jpg", 50, 30)
    assert opened(out.data).format == "JPEG"


def test_transparency_is_flattened_on_white() -> None:
    img = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 20, 40))
    out = prepare_image(encode(img, "WEBP", lossless=True))
    result = opened(out.data)
    assert result.mode == "RGB"
    assert min(result.getpixel((35, 20))) > 240  # type: ignore[arg-type]  # was transparent
    r, g, b = result.getpixel((5, 20))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60


def test_exif_rotation_is_applied_and_metadata_dropped() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x010F] = "Phone Maker"
    data = encode(noise((80, 40)), "JPEG", exif=exif, quality=95)

    out = prepare_image(data, max_bytes=len(data) - 1)  # force conversion

    assert (out.width, out.height) == (40, 80)
    result = opened(out.data)
    assert result.size == (40, 80)
    assert not result.getexif()


def test_picture_that_cannot_get_small_enough() -> None:
    with pytest.raises(MediaError, match="small enough"):
        prepare_image(encode(noise((300, 300)), "PNG"), max_bytes=500)


@pytest.mark.parametrize(
    "blob",
    [
        b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n",
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
        b"",
    ],
    ids=["html-login-page", "pdf", "eps", "empty"],
)
def test_not_a_picture(blob: bytes) -> None:
    with pytest.raises(MediaError, match=r"^That file is not a picture"):
        prepare_image(blob)


# A 38-byte lossless WebP that says it is 9400 × 9400 pixels (88 million: just under Pillow's
# own warning at 89 million); decoding it takes about 350 MB.
WEBP_BOMB = (
    b"RIFF\x1e\x00\x00\x00WEBPVP8L\x11\x00\x00\x00/\xb7\xe4-\t\x07\xd0\xff\xfe\xf7\xbf"
    b"\xff\x81\x88\xe8\x7f\x00\x00"
)


def test_a_38_byte_webp_of_9400_by_9400_pixels_is_refused_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert len(WEBP_BOMB) == 38
    assert Image.open(io.BytesIO(WEBP_BOMB)).size == (9400, 9400)

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the picture was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(MediaError) as caught:
        prepare_image(WEBP_BOMB)
    assert str(caught.value) == (
        "That picture is too large to process (9,400 × 9,400 pixels; the most is 24 million). "
        "Please attach a smaller one."
    )


def test_a_big_jpeg_is_decoded_at_a_reduced_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(Image.new("RGB", (6400, 4800), "olive"), "JPEG", quality=50)
    decoded: list[tuple[int, int]] = []
    load = JpegImagePlugin.JpegImageFile.load

    def spy(self: JpegImagePlugin.JpegImageFile) -> object:
        decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    out = prepare_image(data)
    assert (out.width, out.height) == (1600, 1200)
    assert decoded and max(decoded) <= (3200, 2400)  # never the full 6400 × 4800


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Phone Maker"  # Make
    exif[0x013B] = "Jane Owner"  # Artist
    exif.get_ifd(0x8769)[0xA430] = "Jane Owner"  # CameraOwnerName
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (37.0, 46.0, 29.0)  # GPSLatitudeRef, GPSLatitude
    gps[3], gps[4] = "W", (122.0, 25.0, 10.0)
    return exif


def no_metadata(data: bytes) -> None:
    img = Image.open(io.BytesIO(data))
    assert not img.getexif()
    assert not {"exif", "icc_profile", "comment", "xmp", "Author"} & set(img.info)
    for marker in (b"Exif", b"Jane Owner", b"Phone Maker", b"Author"):
        assert marker not in data


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_small_pictures_are_re_encoded_without_exif_gps_or_owner(fmt: str) -> None:
    params: dict[str, object] = {"exif": gps_exif()}
    if fmt in ("JPEG", "WEBP"):
        params["xmp"] = b"<x:xmpmeta><dc:creator>Jane Owner</dc:creator></x:xmpmeta>"
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Author", "Jane Owner")
        params["pnginfo"] = info
    data = encode(noise((64, 48)), fmt, **params)
    assert b"Jane Owner" in data and len(data) < MAX_MMS_BYTES

    out = prepare_image(data)

    no_metadata(out.data)
    assert (out.width, out.height) == (64, 48)


def test_a_gif_comment_is_not_passed_on() -> None:
    data = encode(Image.new("RGB", (20, 20), "red"), "GIF", comment=b"Jane Owner")
    assert b"Jane Owner" in data
    out = prepare_image(data)
    assert out.extension == "gif"
    no_metadata(out.data)


@pytest.mark.parametrize(
    ("size", "mimetype", "reason"),
    [
        (300 * 1024 * 1024, "video/mp4", NOT_A_PICTURE),
        (4_000, "application/pdf", NOT_A_PICTURE),
        (
            300 * 1024 * 1024,
            "image/jpeg",
            "That file is too big to send (300 MB; the most is 25 MB). "
            "Please attach a smaller picture.",
        ),
    ],
)
def test_slack_files_are_refused_from_their_size_and_type(
    size: int, mimetype: str, reason: str
) -> None:
    with pytest.raises(MediaError) as caught:
        check_file(size, mimetype)
    assert str(caught.value) == reason


def test_slack_files_of_unknown_size_or_type_are_left_to_the_download() -> None:
    check_file(None, "")
    check_file(MAX_FILE_BYTES, "image/png")


def test_decompression_bomb_is_refused() -> None:
    data = encode(Image.new("1", (12_000, 12_000)), "PNG")  # small file, 144 Mpx
    assert len(data) < MAX_MMS_BYTES
    with pytest.raises(MediaError, match="too large"):
        prepare_image(data)


# --- signed links -------------------------------------------------------------------------------

SECRET = media_secret("test-signing-secret")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=48)


def link_parts(url: str) -> tuple[str, str, str]:
    expires, sig, filename = url.split("/media/", 1)[1].split("/")
    return expires, sig, filename


def test_media_url_round_trip() -> None:
    url = media_url("https://sms.example.com/", "m_01AbC", "jpg", secret=SECRET, now=NOW, ttl=TTL)
    assert url.startswith("https://sms.example.com/media/")
    assert url.endswith("/m_01AbC.jpg")
    expires, sig, filename = link_parts(url)
    assert int(expires) == int((NOW + TTL).timestamp())
    assert len(sig) >= 22
    assert verify(expires, sig, filename, SECRET, NOW) == "m_01AbC"
    assert verify(expires, sig, filename, SECRET, NOW + TTL - timedelta(seconds=1)) == "m_01AbC"


def test_secret_depends_on_every_part() -> None:
    assert media_secret("a", "b") == media_secret("a", "b")
    assert media_secret("a", "b") != media_secret("ab")
    assert media_secret("a", "b") != media_secret("b", "a")
    assert media_secret("a") != media_secret("a", "")


def test_signed_path_refuses_unsafe_ids() -> None:
    with pytest.raises(ValueError):
        signed_path("../etc/passwd", "jpg", 1, SECRET)
    with pytest.raises(ValueError):
        signed_path("abc", "html", 1, SECRET)


EXPIRES, SIG, FILENAME = link_parts(signed_path("abc123", "jpg", 1_800_000_000, SECRET))
BEFORE = datetime.fromtimestamp(1_700_000_000, UTC)


@pytest.mark.parametrize(
    ("expires", "sig", "filename", "now"),
    [
        (EXPIRES, ("B" if SIG[0] == "A" else "A") + SIG[1:], FILENAME, BEFORE),  # signature
        (EXPIRES, SIG, "abc124.jpg", BEFORE),  # id
        (EXPIRES, SIG, "abc123.png", BEFORE),  # extension
        ("1800000001", SIG, FILENAME, BEFORE),  # expiry pushed out
        (EXPIRES, SIG, FILENAME, datetime.fromtimestamp(1_800_000_000, UTC)),  # expired
    ],
    ids=["signature", "id", "extension", "expires", "expired"],
)
def test_tampered_or_expired_links_are_refused(
    expires: str, sig: str, filename: str, now: datetime
) -> None:
    assert verify(EXPIRES, SIG, FILENAME, SECRET, BEFORE) == "abc123"
    assert verify(expires, sig, filename, SECRET, now) is None


def test_wrong_secret_is_refused() -> None:
    assert verify(EXPIRES, SIG, FILENAME, media_secret("another-secret"), BEFORE) is None


@pytest.mark.parametrize(
    ("expires", "sig", "filename"),
    [
        ("", SIG, FILENAME),
        ("-1", SIG, FILENAME),
        ("01800000000", SIG, FILENAME),
        ("1e9", SIG, FILENAME),
        ("١٢٣", SIG, FILENAME),  # non-ASCII digits
        ("9" * 40, SIG, FILENAME),
        (EXPIRES, "", FILENAME),
        (EXPIRES, SIG + "=", FILENAME),
        (EXPIRES, "é" * 43, FILENAME),
        (EXPIRES, "\ud800" * 43, FILENAME),
        (EXPIRES, SIG, "abc123"),
        (EXPIRES, SIG, "abc123.jpg.html"),
        (EXPIRES, SIG, "../abc123.jpg"),
        (EXPIRES, SIG, ".jpg"),
        (EXPIRES, SIG, "abc123.JPG"),
    ],
)
def test_malformed_links_are_refused_without_raising(expires: str, sig: str, filename: str) -> None:
    assert verify(expires, sig, filename, SECRET, BEFORE) is None


def test_media_url_needs_an_aware_time() -> None:
    with pytest.raises(ValueError):
        media_url("https://x.example", "a", "jpg", secret=SECRET, now=datetime(2026, 1, 1), ttl=TTL)
