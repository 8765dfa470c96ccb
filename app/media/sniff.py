"""What an uploaded file is, by its first bytes: the declared content type is whatever the client says.

An `input_reference` is handed to a video vendor and kept in our storage under the type found here, so a
text file (or a script, or an HTML page) declared `image/png` never passes for one.
"""

from __future__ import annotations

from app.core.errors import InvalidRequest

# HEIF/AVIF images also open with an `ftyp` box: they are not the videos an ftyp box stands for here.
_IMAGE_BRANDS = frozenset({b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1"})


def sniff_media(data: bytes) -> tuple[str, str] | None:
    """(content type, file extension) of a PNG, JPEG, GIF, WebP, MP4, MOV or WebM file, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif", "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    if data[4:8] == b"ftyp" and int.from_bytes(data[:4], "big") >= 12:
        brand = data[8:12]
        if brand == b"qt  ":
            return "video/quicktime", "mov"
        if brand not in _IMAGE_BRANDS:
            return "video/mp4", "mp4"
    # EBML (Matroska's container); WebM names itself as the DocType within the header.
    if data.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in data[:64]:
        return "video/webm", "webm"
    return None


def media_type_of(data: bytes, param: str) -> tuple[str, str]:
    """The sniffed (content type, extension) of an upload, or 400 `invalid_value` naming `param`."""
    found = sniff_media(data)
    if found is None:
        raise InvalidRequest(
            f"'{param}' must be an image (PNG, JPEG, WebP, GIF) or a video (MP4, MOV, WebM); "
            "its content is none of these, whatever its declared type.",
            param=param,
            code="invalid_value",
        )
    return found
