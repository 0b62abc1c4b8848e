"""OpenAI message content -> Gemini parts: text, images, audio and files (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from voidllm.providers.base import TranslationError

_MEDIA_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "wav": "audio/wav",
    "mp3": "audio/mp3",
    "aiff": "audio/aiff",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "mp4": "video/mp4",
    "mpeg": "video/mpeg",
    "mpg": "video/mpg",
    "mov": "video/mov",
    "avi": "video/avi",
    "flv": "video/x-flv",
    "webm": "video/webm",
    "wmv": "video/wmv",
    "3gp": "video/3gpp",
}
_AUDIO_FORMATS = {"wav": "audio/wav", "mp3": "audio/mp3"}
_URL_SCHEMES = ("http", "https", "gs")


def is_name(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def text_parts(
    content: object, where: str, *, also: tuple[str, ...] = (), keep_empty: bool = False
) -> list[dict[str, Any]]:
    """Text-only content (a string or text parts) as Gemini text parts; empty texts are dropped."""
    if content is None:
        texts: list[str] = []
    elif isinstance(content, str):
        texts = [content]
    elif isinstance(content, list):
        texts = [text_of(part, where, also) for part in content]
    else:
        raise TranslationError(f"the content of {where} must be a string or a list of parts")
    return [{"text": text} for text in texts if text or keep_empty]


def text_of(part: object, where: str, also: tuple[str, ...]) -> str:
    if not isinstance(part, Mapping) or part.get("type") not in ("text", *also):
        raise TranslationError(f"{where} may contain only text parts")
    text = part.get(part["type"])
    if not isinstance(text, str):
        raise TranslationError(f"a text part of {where} has no text")
    return text


def user_parts(content: object) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return text_parts(content, "a user message")
    parts = [_user_part(part) for part in content]
    return [part for part in parts if part.get("text") != ""]


def _user_part(part: object) -> dict[str, Any]:
    if not isinstance(part, Mapping):
        raise TranslationError("a content part of a user message is not an object")
    kind = part.get("type")
    if kind == "text":
        return {"text": text_of(part, "a user message", ())}
    if kind == "image_url":
        image = part.get("image_url")
        return _media_part(image.get("url") if isinstance(image, Mapping) else image)
    if kind == "input_audio":
        return _audio_part(part.get("input_audio"))
    if kind == "file":
        return _file_part(part.get("file"))
    raise TranslationError("a user message has a content part of an unsupported type")


def _media_part(url: object) -> dict[str, Any]:
    """A ``data:`` URL becomes ``inlineData``; an ``http(s):``/``gs:`` URL ``fileData`` typed by extension."""
    if not isinstance(url, str):
        raise TranslationError("an image part has no url")
    if url.startswith("data:"):
        media_type, data = _parse_data_url(url)
        return {"inlineData": {"mimeType": media_type, "data": data}}
    try:
        parsed = urlsplit(url)
    except ValueError:
        raise TranslationError("a media url is not a valid url") from None
    if parsed.scheme.lower() not in _URL_SCHEMES:
        raise TranslationError("a media url must be a data:, http:, https: or gs: url")
    _, dot, extension = parsed.path.rpartition("/")[2].rpartition(".")
    guessed = _MEDIA_TYPES.get(extension.lower()) if dot else None
    if guessed is None:
        raise TranslationError("the media type of a url cannot be told from its extension; send a data: url")
    return {"fileData": {"mimeType": guessed, "fileUri": url}}


def _parse_data_url(url: str) -> tuple[str, str]:
    header, comma, data = url[5:].partition(",")
    mime, *params = header.split(";")
    if not comma or "base64" not in params or "/" not in mime:
        raise TranslationError("a data: url must be base64 with a media type (data:<type>;base64,...)")
    return mime.strip().lower(), data


def _audio_part(audio: object) -> dict[str, Any]:
    if not isinstance(audio, Mapping) or not isinstance(audio.get("data"), str):
        raise TranslationError("an input_audio part has no data")
    audio_format = audio.get("format")
    mime = _AUDIO_FORMATS.get(audio_format) if isinstance(audio_format, str) else None
    if mime is None:
        raise TranslationError("input_audio format must be wav or mp3")
    return {"inlineData": {"mimeType": mime, "data": audio["data"]}}


def _file_part(file: object) -> dict[str, Any]:
    if not isinstance(file, Mapping):
        raise TranslationError("a file part has no file object")
    data = file.get("file_data")
    if not isinstance(data, str):
        raise TranslationError("file parts need file_data (a data: url); file_id is not supported by Gemini")
    if not data.startswith("data:"):
        raise TranslationError("file_data must be a data: url")
    return _media_part(data)
