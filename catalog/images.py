"""Resized versions of product images, stored through the default storage (filesystem or S3-compatible)."""

from __future__ import annotations

import functools
from io import BytesIO
from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage, storages
from PIL import Image, ImageOps

RENDITIONS = {"listing": (480, 480), "large": (1200, 1200)}


def media_url(name: str) -> str:
    """The public URL of a stored file ("" for none). On the filesystem storage the URL of a name never changes,
    so it is worked out once (quoting and joining cost more than the rest of a card); another storage (S3, whose
    URLs may be signed and expire) is asked every time."""
    if not name:
        return ""
    storage = storages["default"]
    if type(storage) is FileSystemStorage:
        return _filesystem_url(storage, storage.base_url, name)
    return storage.url(name)


@functools.lru_cache(maxsize=50_000)
def _filesystem_url(storage: FileSystemStorage, base_url: str, name: str) -> str:
    return storage.url(name)


def encode_jpeg(image: Image.Image) -> bytes:
    buffer = BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=82, optimize=True, progressive=True)
    return buffer.getvalue()


def make_renditions(name: str) -> dict[str, str]:
    """Write the renditions of the stored image `name`; returns their storage names by rendition."""
    with default_storage.open(name, "rb") as handle:
        original = ImageOps.exif_transpose(Image.open(handle))
        original.load()
    stem = PurePosixPath(name).with_suffix("")
    names = {}
    for rendition, size in RENDITIONS.items():
        copy = original.copy()
        copy.thumbnail(size, Image.Resampling.LANCZOS)
        target = f"{stem}.{rendition}.jpg"
        if default_storage.exists(target):
            default_storage.delete(target)
        names[rendition] = default_storage.save(target, ContentFile(encode_jpeg(copy)))
    return names
