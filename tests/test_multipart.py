"""Rewrite of the ``model`` field of multipart/form-data bodies in any part order, driven with bytes only.

Bodies come from httpx's own multipart encoder (with a fixed boundary, so the expected rewritten body is
simply httpx's encoding of the same form with the new model) and from hand-written RFC 2046/7578 bodies
for the cases no encoder produces. Every body is fed whole, split at every offset, one byte at a time and in
seeded random chunk sizes: the boundary, the part headers and the model value must be found wherever the
chunk edges fall. A body whose model field comes first is streamed (the rest relayed); one with a file part
(or a long head) before it is held: fed whole, then rewritten.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from voidllm.errors import BadRequestError
from voidllm.proxy.multipart import (
    DEFAULT_MAX_HEAD,
    FormField,
    MultipartError,
    MultipartHead,
    boundary_from_content_type,
)

BOUNDARY = "b0undary-7MA4YWxkTrZu0gW"
B = BOUNDARY.encode()
URL = "http://gateway.test/v1/audio/transcriptions"
WAV = b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(range(256)) * 8 + b"\r\n-\r\n--b0undary\r\n--"


def encode(data: dict[str, str], files: Any = None, boundary: str = BOUNDARY) -> bytes:
    """httpx's multipart encoding. Without files httpx would send a urlencoded form, so text fields then
    go as httpx's file-less ``(None, value)`` fields, which it encodes exactly like ``data`` fields."""
    if not files:
        data, files = {}, [(name, (None, value.encode())) for name, value in data.items()]
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    request = httpx.Request("POST", URL, data=data, files=files, headers=headers)
    return request.read()


def one_byte_at_a_time(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def random_chunks(body: bytes, seed: int, largest: int = 64) -> list[bytes]:
    rng = random.Random(seed)
    chunks, pos = [], 0
    while pos < len(body):
        size = rng.randint(1, largest)
        chunks.append(body[pos : pos + size])
        pos += size
    return chunks


def chunkings(body: bytes) -> Iterator[list[bytes]]:
    yield [body]
    for cut in range(1, len(body)):
        yield [body[:cut], body[cut:]]
    yield one_byte_at_a_time(body)
    for seed in range(20):
        yield random_chunks(body, seed)


def proxy(
    chunks: Sequence[bytes], new_model: str, *, boundary: bytes = B, max_head: int = DEFAULT_MAX_HEAD
) -> tuple[str, bytes, int]:
    """What the proxy does: feed until the model is read; then rewrite and relay the rest (streamed), or feed
    the rest and rewrite it all (held); (model, body, delta)."""
    return proxy_head(chunks, new_model, boundary=boundary, max_head=max_head)[1:]


def proxy_head(
    chunks: Sequence[bytes], new_model: str, *, boundary: bytes = B, max_head: int = DEFAULT_MAX_HEAD
) -> tuple[MultipartHead, str, bytes, int]:
    head = MultipartHead(boundary, max_head=max_head)
    rest = iter(chunks)
    for chunk in rest:
        if head.feed(chunk):
            break
    else:
        head.finish()
    assert head.model is not None
    assert head.done
    delta = head.length_delta(new_model)
    if head.holds_body:
        for chunk in rest:
            assert head.feed(chunk)
        return head, head.model, head.rewrite(new_model), delta
    body = head.rewrite(new_model) + b"".join(head.relay(chunk) for chunk in rest)
    return head, head.model, body, delta


def assert_rewrites(
    body: bytes, model: str, new_model: str, expected: bytes, *, held: bool = False, **options: Any
) -> None:
    for chunks in chunkings(body):
        head, *result = proxy_head(chunks, new_model, **options)
        assert result == [model, expected, len(expected) - len(body)], chunks
        assert head.holds_body is held, chunks


def assert_refused(body: bytes, message: str, **options: Any) -> None:
    for chunks in chunkings(body):
        with pytest.raises(MultipartError, match=message):
            proxy(chunks, "canonical", **options)


def hand_written(*parts: bytes, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    """Parts are (headers CRLF CRLF content); this adds the delimiters."""
    body = b"".join(b"--" + B + b"\r\n" + part + b"\r\n" for part in parts)
    return preamble + body + b"--" + B + b"--\r\n" + epilogue


def field(name: bytes, value: bytes) -> bytes:
    return b'Content-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value


def file_part(name: bytes = b"file", content: bytes = WAV) -> bytes:
    return (
        b'Content-Disposition: form-data; name="' + name + b'"; filename="speech.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n" + content
    )


# --- the boundary --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ("multipart/form-data;boundary=abc", b"abc"),
        ("Multipart/Form-Data; BOUNDARY=abc", b"abc"),
        (
            "multipart/form-data; charset=utf-8; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
            b"----WebKitFormBoundary7MA4YWxkTrZu0gW",
        ),
        ('multipart/form-data; boundary="a b\'()+_,-./:=?Z"', b"a b'()+_,-./:=?Z"),
        ('multipart/form-data; boundary="a:b?c=d"; charset=utf-8', b"a:b?c=d"),
        ("multipart/form-data; boundary=" + "x" * 70, b"x" * 70),
        ("multipart/form-data; boundary=0", b"0"),
    ],
)
def test_boundary_from_content_type(content_type: str, boundary: bytes) -> None:
    assert boundary_from_content_type(content_type) == boundary


def test_boundary_of_an_httpx_request() -> None:
    request = httpx.Request("POST", URL, data={"model": "m"}, files={"file": ("a.wav", b"x")})
    expected = request.headers["content-type"].split("boundary=")[1].encode()
    assert boundary_from_content_type(request.headers["content-type"]) == expected


@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "application/json",
        "multipart/mixed; boundary=abc",
        "multipart/form-data",
        "multipart/form-data; charset=utf-8",
        "multipart/form-data; boundary=",
        'multipart/form-data; boundary=""',
        "multipart/form-data; boundary=" + "x" * 71,
        'multipart/form-data; boundary="abc "',
        "multipart/form-data; boundary=ab@c",
        'multipart/form-data; boundary="with;semicolon"',  # ";" is not a bchar
        'multipart/form-data; boundary="ab\\"c"',
        "multipart/form-data; boundary=caf\u00e9",
        'multipart/form-data; boundary="abc',
        "multipart/form-data; boundary=a; boundary=b",
    ],
)
def test_invalid_content_types_are_refused(content_type: str) -> None:
    with pytest.raises(MultipartError):
        boundary_from_content_type(content_type)


def test_multipart_error_is_a_value_error_and_a_400() -> None:
    error = MultipartError("model field is required")
    assert isinstance(error, ValueError)
    assert isinstance(error, BadRequestError)
    assert (error.status, error.code, str(error)) == (400, "bad_request", "model field is required")


# --- rewriting -----------------------------------------------------------------------------------------


def test_transcription_form_from_httpx() -> None:
    files = {"file": ("speech.wav", WAV, "audio/wav")}
    body = encode({"model": "whisper", "language": "en"}, files)
    expected = encode({"model": "openai/whisper-large-v3", "language": "en"}, files)
    assert_rewrites(body, "whisper", "openai/whisper-large-v3", expected)


def test_model_after_other_text_fields_and_a_shorter_name() -> None:
    files = {"image": ("cat.png", b"\x89PNG\r\n\x1a\n" + bytes(1000), "image/png")}
    form = {"prompt": "a cat wearing a hat", "n": "2", "model": "image-editor-alias", "size": "1024x1024"}
    body = encode(form, files)
    expected = encode({**form, "model": "gpt-image-1"}, files)
    assert_rewrites(body, "image-editor-alias", "gpt-image-1", expected)


def test_unchanged_model_gives_the_same_bytes() -> None:
    body = encode({"model": "whisper-1"}, {"file": ("a.wav", WAV)})
    assert_rewrites(body, "whisper-1", "whisper-1", body)


def test_utf8_model_names_and_byte_lengths() -> None:
    body = encode({"model": "модель"}, {"file": ("a.wav", WAV)})
    expected = encode({"model": "canonical-ü"}, {"file": ("a.wav", WAV)})
    assert_rewrites(body, "модель", "canonical-ü", expected)


def test_model_value_is_stripped_but_replaced_whole() -> None:
    body = hand_written(field(b"model", b"  whisper\t\r\n"), file_part())
    expected = hand_written(field(b"model", b"whisper-1"), file_part())
    assert_rewrites(body, "whisper", "whisper-1", expected)


def test_a_form_without_file_parts() -> None:
    body = encode({"model": "m", "note": "x" * 100})
    assert_rewrites(body, "m", "mm", encode({"model": "mm", "note": "x" * 100}))


def test_preamble_padding_and_epilogue() -> None:
    preamble = b"This is a preamble; --" + B + b" is not at a line start.\r\n"
    body = hand_written(
        field(b"model", b"whisper"), file_part(), preamble=preamble, epilogue=b"epilogue --" + B + b"--\r\n"
    )
    body = body.replace(B + b"\r\n", B + b" \t\r\n", 1)  # transport padding after the first boundary
    assert b"--" + B + b" \t\r\n" in body
    assert_rewrites(body, "whisper", "w", body.replace(b"\r\n\r\nwhisper\r\n", b"\r\n\r\nw\r\n"))


def test_body_that_opens_with_crlf() -> None:
    body = b"\r\n" + hand_written(field(b"model", b"m"), file_part())
    assert_rewrites(body, "m", "n", b"\r\n" + hand_written(field(b"model", b"n"), file_part()))


@pytest.mark.parametrize(
    "disposition",
    [
        b'Content-Disposition: form-data; name="model"',
        b"content-disposition: form-data; name=model",
        b'CONTENT-DISPOSITION: FORM-DATA; NAME="model"',
        b'Content-Disposition:form-data;name="model"',
        b'Content-Disposition: form-data; name = "model" ',
        b'Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: form-data; name="model"',
        b'Content-Disposition: form-data; name="model"\r\nContent-Transfer-Encoding: 8bit',
    ],
)
def test_header_variants(disposition: bytes) -> None:
    body = hand_written(disposition + b"\r\n\r\nwhisper", file_part())
    assert proxy([body], "x")[:2] == ("whisper", body.replace(b"\r\n\r\nwhisper\r\n", b"\r\n\r\nx\r\n"))


def test_fields_named_like_model_are_other_fields() -> None:
    body = hand_written(
        field(b"Model", b"a"),
        field(b'mo\\"del', b"b"),
        field(b"models", b"c"),
        field(b"model", b"d"),
        file_part(),
    )
    assert proxy(one_byte_at_a_time(body), "z")[0] == "d"


def test_a_large_first_chunk_is_fine_when_the_model_ends_early() -> None:
    body = encode({"model": "m"}, {"file": ("a.wav", bytes(200_000))})
    assert proxy([body], "n", max_head=1024)[1] == encode({"model": "n"}, {"file": ("a.wav", bytes(200_000))})


def test_the_file_is_never_held() -> None:
    content = bytes(range(256)) * 20_000  # 5 MB
    body = encode({"model": "whisper"}, {"file": ("a.wav", content)})
    head = MultipartHead(B)
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    assert head.feed(chunks[0])
    held = [head.buffered]
    out = [head.rewrite("w")]
    for chunk in chunks[1:]:
        assert head.relay(chunk) is chunk
        held.append(head.buffered)
    assert held[0] == len(chunks[0])
    assert max(held[1:]) < len(b"\r\n--" + B)
    assert held[-1] == 0
    out += chunks[1:]
    assert b"".join(out) == encode({"model": "w"}, {"file": ("a.wav", content)})


@pytest.mark.parametrize("seed", range(40))
def test_generated_forms(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = 'abcxyz é✓\r\n-"\\;='
    text = {f"f{i}": "".join(rng.choices(alphabet, k=rng.randint(0, 30))) for i in range(rng.randint(0, 4))}
    parts: list[tuple[str, Any]] = [(name, (None, value.encode())) for name, value in text.items()]
    parts += [
        (f"file{i}", (f"n{i}.bin", rng.randbytes(rng.randint(0, 3000)), "application/octet-stream"))
        for i in range(rng.randint(0, 2))
    ]
    rng.shuffle(parts)
    at = rng.randint(0, len(parts))
    held = any(filename is not None for _, (filename, *_) in parts[:at])
    new = "canonical/" + "m" * rng.randint(0, 12)
    boundary = "".join(rng.choice("abcdefXYZ0123456789'()+_,-./:=?") for _ in range(rng.randint(1, 70)))
    body = encode({}, [*parts[:at], ("model", (None, f"alias-{seed}".encode())), *parts[at:]], boundary)
    expected = encode({}, [*parts[:at], ("model", (None, new.encode())), *parts[at:]], boundary)
    b = boundary.encode()
    for chunk_seed in range(5):
        chunks = random_chunks(body, seed * 100 + chunk_seed, largest=rng.choice([1, 7, 100, 5000]))
        head, *result = proxy_head(chunks, new, boundary=b)
        assert result == [f"alias-{seed}", expected, len(expected) - len(body)]
        assert head.holds_body is held


# --- the head limit: streamed or held ---------------------------------------------------------------------


def test_head_limit_is_exact_whatever_the_chunking() -> None:
    body = encode({"prompt": "p" * 300, "model": "m"}, {"file": ("a.wav", WAV)})
    value_start = body.index(b'name="model"\r\n\r\n') + len(b'name="model"\r\n\r\n')
    model_end = body.index(b"\r\n--" + B, value_start) + len(b"\r\n--" + B)
    expected = encode({"prompt": "p" * 300, "model": "n"}, {"file": ("a.wav", WAV)})
    assert_rewrites(body, "m", "n", expected, max_head=model_end)
    assert_rewrites(body, "m", "n", expected, max_head=model_end - 1, held=True)


def test_default_head_limit() -> None:
    assert DEFAULT_MAX_HEAD == 64 * 1024
    prompt = "x" * (DEFAULT_MAX_HEAD - 200)
    body = encode({"prompt": prompt, "model": "m"}, {"file": ("a.wav", WAV)})
    assert_rewrites(body, "m", "n", encode({"prompt": prompt, "model": "n"}, {"file": ("a.wav", WAV)}))
    prompt = "x" * DEFAULT_MAX_HEAD
    body = encode({"prompt": prompt, "model": "m"}, {"file": ("a.wav", WAV)})
    head = MultipartHead(B)
    assert head.feed(body)
    assert head.holds_body
    assert head.rewrite("n") == encode({"prompt": prompt, "model": "n"}, {"file": ("a.wav", WAV)})


# --- any part order: a file before the model field holds the body -------------------------------------


def test_model_after_a_file_part_as_the_node_sdk_sends_it() -> None:
    parts = [
        ("file", ("a.wav", WAV, "audio/wav")),
        ("model", (None, b"whisper")),
        ("language", (None, b"en")),
    ]
    body = encode({}, parts)
    expected = encode({}, [parts[0], ("model", (None, b"whisper-large-v3")), parts[2]])
    assert_rewrites(body, "whisper", "whisper-large-v3", expected, held=True)


def test_model_last_after_fields_and_files() -> None:
    parts = [
        ("prompt", (None, b"a cat")),
        ("image", ("cat.png", b"\x89PNG\r\n\x1a\n" + bytes(1000), "image/png")),
        ("mask", ("mask.png", WAV, "image/png")),
        ("n", (None, b"2")),
        ("model", (None, b"image-editor-alias")),
    ]
    body = encode({}, parts)
    expected = encode({}, [*parts[:-1], ("model", (None, b"gpt-image-1"))])
    assert_rewrites(body, "image-editor-alias", "gpt-image-1", expected, held=True)


def test_a_held_body_is_kept_until_the_rewrite_then_let_go() -> None:
    content = bytes(range(256)) * 4_000  # 1 MB
    body = encode({}, [("file", ("a.wav", content)), ("model", (None, b"whisper"))])
    head = MultipartHead(B)
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    done = [head.feed(chunk) for chunk in chunks]
    assert done == [False] * (len(chunks) - 1) + [True]
    assert head.holds_body
    assert head.buffered == len(body)
    assert head.rewrite("w") == encode({}, [("file", ("a.wav", content)), ("model", (None, b"w"))])
    assert head.buffered == 0


def test_a_held_body_without_a_model_field() -> None:
    body = encode({}, [("file", ("a.wav", WAV)), ("language", (None, b"en"))])
    assert_refused(body, "model field is required")


# --- refusals ------------------------------------------------------------------------------------------


def test_model_as_a_file_part() -> None:
    body = hand_written(file_part(b"model", b"whisper"))
    assert_refused(body, "the model field must be a text field, not a file")
    after_a_file = hand_written(file_part(), file_part(b"model", b"whisper"))
    assert_refused(after_a_file, "the model field must be a text field, not a file")


def test_a_second_model_field_is_refused_wherever_it_is() -> None:
    after_file = encode({"model": "cheap"}, [("file", ("a.wav", WAV)), ("model", (None, b"expensive"))])
    assert_refused(after_file, "the model field must appear only once")
    before_file = hand_written(field(b"model", b"cheap"), field(b"x", b"1"), field(b"model", b"expensive"))
    assert_refused(before_file, "the model field must appear only once")
    as_file = hand_written(field(b"model", b"cheap"), file_part(), file_part(b"model"))
    assert_refused(as_file, "the model field must appear only once")
    held = hand_written(file_part(), field(b"model", b"cheap"), file_part(), field(b"model", b"expensive"))
    assert_refused(held, "the model field must appear only once")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"--" + B + b"--\r\n",
        hand_written(field(b"language", b"en")),
        hand_written(field(b"language", b"en"), field(b"model", b"")),
        hand_written(field(b"model", b" \t\r\n ")),
        hand_written(field(b"model", b"whisper"))[: -len(b"\r\n--" + B + b"--\r\n")],
        b"no multipart here at all",
    ],
)
def test_model_field_is_required(body: bytes) -> None:
    assert_refused(body, "model field is required")


@pytest.mark.parametrize("preamble", [b"", b"preamble\n"])
def test_bare_lf_bodies_are_refused(preamble: bytes) -> None:
    body = preamble + hand_written(field(b"model", b"whisper"), file_part()).replace(b"\r\n", b"\n")
    assert_refused(body, "malformed multipart boundary line|model field is required")


def test_model_value_must_be_utf8() -> None:
    body = hand_written(field(b"model", b"whisper\xff"), file_part())
    assert_refused(body, "the model field is not valid UTF-8")


@pytest.mark.parametrize("encoding", [b"base64", b"quoted-printable", b"BASE64"])
def test_model_with_a_transfer_encoding(encoding: bytes) -> None:
    part = (
        b'Content-Disposition: form-data; name="model"\r\n'
        b"Content-Transfer-Encoding: " + encoding + b"\r\n\r\nd2hpc3Blcg=="
    )
    assert_refused(hand_written(part, file_part()), "must not use a Content-Transfer-Encoding")


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (b"Content-Type: text/plain\r\n\r\nwhisper", "has no Content-Disposition"),
        (b"\r\nwhisper", "has no Content-Disposition"),
        (
            b'Content-Disposition: form-data; name="x"\r\n'
            b'Content-Disposition: form-data; name="model"\r\n\r\nw',
            "more than one Content-Disposition",
        ),
        (b'Content-Disposition: form-data; name="model"; name="x"\r\n\r\nw', "repeated header parameter"),
        (b'Content-Disposition: form-data; name="model\r\n\r\nw', "malformed header parameter"),
        (b"Content-Disposition: attachment; name=model\r\n\r\nw", "not a named form-data field"),
        (b"Content-Disposition: form-data\r\n\r\nw", "not a named form-data field"),
        (b'Content-Disposition: form-data;\r\n name="model"\r\n\r\nw', "folded"),
        (
            b'Content-Disposition: form-data; name="model"\r\nX-Broken\r\n\r\nw',
            "malformed multipart part header",
        ),
    ],
)
def test_malformed_parts(part: bytes, message: str) -> None:
    assert_refused(hand_written(part, file_part()), message)


@pytest.mark.parametrize(
    "body",
    [
        b"--" + B + b"X\r\n" + field(b"model", b"m") + b"\r\n--" + B + b"--\r\n",
        b"--" + B + b" x\r\n" + field(b"model", b"m") + b"\r\n--" + B + b"--\r\n",
        b"--" + B + b"\r\n" + field(b"model", b"m") + b"\r\n--" + B + b"-\r\n",
        b"--" + B + b"\r\n" + field(b"model", b"m") + b"\r\n--" + B + b" " * 300 + b"\r\n",
    ],
)
def test_malformed_boundary_lines(body: bytes) -> None:
    assert_refused(body, "malformed multipart boundary line")


def test_a_malformed_boundary_after_the_model_is_found_while_relaying() -> None:
    good = encode({"model": "m"}, {"file": ("a.wav", WAV)})
    body = good.replace(b"\r\n--" + B + b"--\r\n", b"\r\n--" + B + b"??\r\n")
    assert body != good
    head = MultipartHead(B)
    assert head.feed(body[:120])
    head.rewrite("n")
    head.relay(body[120:-30])
    with pytest.raises(MultipartError, match="malformed multipart boundary line"):
        head.relay(body[-30:])


# --- misuse --------------------------------------------------------------------------------------------


def test_calls_out_of_order() -> None:
    head = MultipartHead(B)
    with pytest.raises(RuntimeError):
        head.rewrite("m")
    with pytest.raises(RuntimeError):
        head.length_delta("m")
    with pytest.raises(RuntimeError):
        head.relay(b"x")
    assert head.feed(encode({"model": "m"}))
    head.finish()  # the model was read, so the end of the body is fine
    head.rewrite("n")
    with pytest.raises(RuntimeError):
        head.rewrite("n")
    with pytest.raises(RuntimeError):
        head.feed(b"x")


@pytest.mark.parametrize("bad", ["a\r\nb", "a\nb", "a\r"])
def test_new_model_must_not_break_the_framing(bad: str) -> None:
    head = MultipartHead(B)
    head.feed(encode({"model": "m"}))
    with pytest.raises(ValueError, match="line break"):
        head.rewrite(bad)


def test_invalid_boundary_argument() -> None:
    with pytest.raises(ValueError, match="empty"):
        MultipartHead(b"")
    with pytest.raises(ValueError, match="'boundary' must be <= 70"):
        MultipartHead(b"x" * 71)
    with pytest.raises(ValueError, match="'max_head' must be > 0"):
        MultipartHead(B, max_head=0)


def test_feeding_after_the_model_keeps_the_bytes_for_rewrite() -> None:
    body = encode({"model": "m"}, {"file": ("a.wav", WAV)})
    head = MultipartHead(B)
    cut = body.index(b"\r\n--" + B) + len(b"\r\n--" + B)
    assert head.feed(body[:cut])
    assert head.feed(body[cut:])
    assert head.rewrite("n") == encode({"model": "n"}, {"file": ("a.wav", WAV)})


def test_exports() -> None:
    import voidllm.proxy.multipart as module

    imported = {"annotations", "BadRequestError", "attrs", "enum", "re", "Mapping"}
    assert set(module.__all__) == {name for name in vars(module) if not name.startswith("_")} - imported


# --- held on request: the fields, and text values rewritten ------------------------------------------------


def held_fields(chunks: Sequence[bytes]) -> tuple[MultipartHead, list[FormField]]:
    """What the proxy does when the guard or a policy must see every field: feed until the model is read,
    hold, feed the rest, list the fields."""
    head = MultipartHead(B)
    rest = iter(chunks)
    for chunk in rest:
        if head.feed(chunk):
            break
    head.hold()
    for chunk in rest:
        head.feed(chunk)
    return head, head.fields()


def test_held_on_request_lists_every_field_and_rewrites_text_values() -> None:
    prompt = "Names: ✓ jane@example.org\r\nline two"
    body = hand_written(
        field(b"prompt", prompt.encode()),
        field(b"model", b"whisper"),
        file_part(),
        field(b"timestamp_granularities[]", b"word"),
        field(b"language", b"en"),
    )
    expected = hand_written(
        field(b"prompt", "Names: ✓ [EMAIL_1]\r\nline two".encode()),
        field(b"model", b"whisper-test"),
        file_part(),
        field(b"timestamp_granularities[]", b"word"),
        field(b"language", b"fr"),
    )
    for chunks in chunkings(body):
        head, fields = held_fields(chunks)
        assert [(f.name, f.value) for f in fields] == [
            ("prompt", prompt),
            ("model", "whisper"),
            ("file", None),
            ("timestamp_granularities[]", "word"),
            ("language", "en"),
        ]
        assert head.holds_body
        assert head.complete
        out = head.rewrite("whisper-test", {0: "Names: ✓ [EMAIL_1]\r\nline two", 4: "fr"})
        assert out == expected, chunks
    assert prompt not in repr(held_fields([body])[1])  # a field's repr leaves its value out


def test_held_on_request_refuses_what_the_guard_could_not_read() -> None:
    cases = {
        "ends before its closing boundary": hand_written(field(b"model", b"m"), field(b"prompt", b"x"))[:-8],
        "is not valid UTF-8": hand_written(field(b"model", b"m"), field(b"prompt", b"\xff\xfe")),
        "must not use a Content-Transfer-Encoding": hand_written(
            field(b"model", b"m"),
            b'Content-Disposition: form-data; name="prompt"\r\nContent-Transfer-Encoding: base64\r\n\r\neA==',
        ),
    }
    for message, body in cases.items():
        for chunks in ([body], one_byte_at_a_time(body)):
            with pytest.raises(MultipartError, match=message):
                held_fields(chunks)


def test_rewrite_refuses_values_it_cannot_place() -> None:
    body = hand_written(field(b"model", b"m"), file_part(), field(b"prompt", b"p"))
    for index, value in ((0, "model"), (1, "a file"), (3, "nothing"), (2, "a\r\n--" + BOUNDARY)):
        head, _ = held_fields([body])
        expected = MultipartError if index == 2 else ValueError  # the client's doing: a 400
        with pytest.raises(expected, match=r"text field|boundary"):
            head.rewrite("canonical", {index: value})
    streamed = MultipartHead(B)
    assert streamed.feed(body)
    with pytest.raises(RuntimeError):
        streamed.fields()  # not held
    streamed.hold()
    assert streamed.rewrite("canonical", {2: "q"}) == body.replace(
        b"\r\n\r\nm\r\n", b"\r\n\r\ncanonical\r\n"
    ).replace(b"\r\n\r\np\r\n", b"\r\n\r\nq\r\n")
    with pytest.raises(RuntimeError):
        streamed.hold()  # after the rewrite
