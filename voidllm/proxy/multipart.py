"""Rewrite of the ``model`` field (and other text fields) of ``multipart/form-data`` requests, in any part
order (sans-IO).

Audio transcription/translation and image edit/variation requests are forms with a small ``model`` text
field and a file part that may be many megabytes. The proxy must read ``model`` to authorise and route the
request and rewrite it to the canonical name. Clients send the parts in any order: Python's ``openai`` SDK
puts ``model`` first, the Node SDK puts ``file`` first.

Design. :class:`MultipartHead` is fed the body as it arrives and buffers only its *head*: the bytes up to
the end of the ``model`` part. It walks the RFC 2046 framing (optional preamble, ``--boundary`` lines with
transport padding, ``CRLF--boundary`` delimiters, the closing ``--boundary--``) with ``bytes.find`` and a
cursor that never re-scans bytes it has passed, so feeding one byte at a time costs what one chunk does.
Part headers (RFC 7578: CRLF lines, a ``form-data`` ``Content-Disposition`` with a ``name``, quoted or not,
header names in any case) are parsed only for the name and whether a ``filename`` makes it a file part.

Two ways through, chosen by where the model field is:

- *Streamed* (the model field comes before any file part and ends within ``max_head`` bytes): once the
  ``model`` part is complete, :meth:`MultipartHead.rewrite` returns the head with only the model value
  replaced, plus whatever was received past it; the rest of the body follows verbatim through
  :meth:`MultipartHead.relay`, which keeps scanning part headers (keeping no more than a delimiter's length
  of file data) so that a second ``model`` part is refused: a server that reads the last value of a
  repeated field would otherwise be asked for a model the gateway never authorised. The file is never held.
- *Held* (a file part, or more than ``max_head`` bytes of other parts, came before the model field):
  :attr:`MultipartHead.holds_body` is set and the caller feeds the whole body, which is held in memory (the
  caller bounds it: the proxy by ``max_request_body``), then :meth:`MultipartHead.rewrite` returns all of
  it with the model value replaced. Feeding goes on scanning, so a second ``model`` part is refused here too.
  The caller may also ask for this way with :meth:`MultipartHead.hold` once the model field was read (the
  proxy does when the prompt guard or a request policy must see every text field before anything goes
  upstream): then :meth:`MultipartHead.fields` lists every part of the complete body (text fields with their
  values, file parts by name only) and :meth:`MultipartHead.rewrite` also replaces the values of the text
  fields it is given (the guard's redactions), every other byte as the client sent it.

Refused with :class:`MultipartError`: a body without a model field (or an empty one), a model field sent as
a file part, a model value that is not UTF-8 or declares a Content-Transfer-Encoding, a repeated model field,
malformed boundary lines, part headers longer than ``max_head``, parts without a ``form-data`` disposition
and name, repeated dispositions and folded header lines (ambiguous input is refused rather than guessed at);
and, when :meth:`MultipartHead.fields` is asked for, a body that ends before its closing boundary and a text
field that is not UTF-8 or declares a Content-Transfer-Encoding (text the guard could not read).

Deliberately left out: decoding Content-Transfer-Encoding (deprecated by RFC 7578 section 4.7) and charsets
other than UTF-8 (``_charset_``); bodies with bare LF line endings (not multipart under RFC 2046: they
fail on a malformed boundary line or as "model field is required"); checking the file parts' content or the
epilogue; and a truncated body after the model part, which the upstream refuses.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping

import attrs

from voidllm.errors import BadRequestError

__all__ = ["DEFAULT_MAX_HEAD", "FormField", "MultipartError", "MultipartHead", "boundary_from_content_type"]

DEFAULT_MAX_HEAD = 64 * 1024  # a model field ending later than this holds the body

_BCHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")
_PARAM = re.compile(r';[ \t]*([^\s=;]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^;]*)')
_ESCAPE = re.compile(r"\\(.)")
_IDENTITY_ENCODINGS = (b"7bit", b"8bit", b"binary")
_MAX_PADDING = 256


class MultipartError(BadRequestError, ValueError):
    """The multipart body cannot be proxied; a 400 ``bad_request`` at the HTTP edge."""


def boundary_from_content_type(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type, as bytes.

    Raises:
        MultipartError: another media type, no boundary, or one that breaks RFC 2046 (1-70 characters from
            the ``bchars`` set, not ending in a space).
    """
    kind, _, rest = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise MultipartError("Content-Type must be multipart/form-data")
    boundary = _params(rest).get("boundary")
    if boundary is None:
        raise MultipartError("multipart/form-data without a boundary")
    if not 1 <= len(boundary) <= 70 or boundary.endswith(" ") or not _BCHARS.issuperset(boundary):
        raise MultipartError("invalid multipart boundary")
    return boundary.encode("ascii")


def _params(text: str) -> dict[str, str]:
    """``; key=value`` parameters (values quoted or not); keys in lower case; a repeated key is an error."""
    params: dict[str, str] = {}
    for match in _PARAM.finditer(text if text.startswith(";") else ";" + text):
        key, value = match.group(1).lower(), match.group(2).strip()
        if value.startswith('"'):
            if len(value) < 2 or not value.endswith('"'):
                raise MultipartError("malformed header parameter")
            value = _ESCAPE.sub(r"\1", value[1:-1])
        if key in params:
            raise MultipartError("repeated header parameter")
        params[key] = value
    return params


@attrs.frozen
class _Part:
    """What the proxy needs from one part's headers."""

    name: str
    is_file: bool
    identity_encoding: bool

    @classmethod
    def from_headers(cls, block: bytes) -> _Part:
        disposition: str | None = None
        encoding = b"binary"
        for line in block.split(b"\r\n"):
            if line[:1] in (b" ", b"\t"):
                raise MultipartError("folded multipart part headers are not supported")
            key, colon, value = line.partition(b":")
            if not colon:
                raise MultipartError("malformed multipart part header")
            key = key.strip().lower()
            if key == b"content-disposition":
                if disposition is not None:
                    raise MultipartError("a multipart part has more than one Content-Disposition")
                disposition = value.decode("latin-1").strip()
            elif key == b"content-transfer-encoding":
                encoding = value.strip().lower()
        if disposition is None:
            raise MultipartError("a multipart part has no Content-Disposition")
        return cls.from_disposition(disposition, identity_encoding=encoding in _IDENTITY_ENCODINGS)

    @classmethod
    def from_disposition(cls, disposition: str, *, identity_encoding: bool) -> _Part:
        kind, _, rest = disposition.partition(";")
        params = _params(rest)
        name = params.get("name")
        if kind.strip().lower() != "form-data" or name is None:
            raise MultipartError("a multipart part is not a named form-data field")
        is_file = "filename" in params or "filename*" in params
        return cls(name=name, is_file=is_file, identity_encoding=identity_encoding)


@attrs.frozen
class FormField:
    """One part of a held form, as :meth:`MultipartHead.fields` lists it."""

    name: str
    value: str | None = attrs.field(repr=False)
    """A text field's value as sent (UTF-8 decoded, not stripped); ``None`` for a file part (not read)."""


class _State(enum.Enum):
    PREAMBLE = enum.auto()  # before the first --boundary
    BOUNDARY = enum.auto()  # just after a --boundary: "--" closes, else padding and CRLF
    HEADERS = enum.auto()  # a part's header block, up to CRLF CRLF
    BODY = enum.auto()  # a part's content, up to CRLF --boundary
    END = enum.auto()  # after the closing --boundary--: the epilogue is ignored


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class MultipartHead:
    """Reads a multipart body up to its ``model`` field and rewrites that field's value.

    Use: :meth:`feed` chunks until it returns True (or :meth:`finish` at the end of the body) and read
    :attr:`model`. Then, streamed: send :meth:`rewrite` upstream, then each further chunk through
    :meth:`relay`; held (:attr:`holds_body`, or asked for with :meth:`hold`): :meth:`feed` the rest of the
    body, read :meth:`fields` if needed, then send :meth:`rewrite`.
    """

    boundary: bytes = attrs.field(validator=attrs.validators.max_len(70))
    max_head: int = attrs.field(default=DEFAULT_MAX_HEAD, validator=attrs.validators.gt(0))
    model: str | None = attrs.field(default=None, init=False)
    holds_body: bool = attrs.field(default=False, init=False)  # a file or max_head bytes came first
    _delimiter: bytes = attrs.field(init=False, repr=False)
    _buf: bytearray = attrs.field(factory=bytearray, init=False, repr=False)
    _state: _State = attrs.field(default=_State.PREAMBLE, init=False, repr=False)
    _pos: int = attrs.field(default=0, init=False, repr=False)
    _search: int = attrs.field(default=0, init=False, repr=False)
    _part: _Part | None = attrs.field(default=None, init=False, repr=False)
    _parts: list[tuple[_Part, int, int]] = attrs.field(factory=list, init=False, repr=False)
    """Every complete part fed before :meth:`rewrite`: its headers and the span of its value in ``_buf`` (as
    fed: :meth:`length_delta` reads the model's after the rewrite too)."""
    _model_index: int = attrs.field(default=-1, init=False, repr=False)
    _rewritten: bool = attrs.field(default=False, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.boundary:
            raise ValueError("the boundary must not be empty")
        self._delimiter = b"\r\n--" + self.boundary

    @property
    def done(self) -> bool:
        """True once the ``model`` field has been read."""
        return self.model is not None

    @property
    def buffered(self) -> int:
        """Bytes held: all that was fed before :meth:`rewrite`, at most a part's headers after it."""
        return len(self._buf)

    def feed(self, data: bytes) -> bool:
        """Buffer more of the body; return True once the ``model`` part is complete.

        Everything fed is kept until :meth:`rewrite`; the caller bounds it (:attr:`holds_body` says whether
        to go on feeding the rest of the body).

        Raises:
            MultipartError: see the module docstring.
        """
        if self._rewritten:
            raise RuntimeError("feed() after rewrite(); pass the rest of the body through relay()")
        self._buf += data
        self._advance()
        return self.model is not None

    def finish(self) -> None:
        """The body ended. Raises :class:`MultipartError` if no model field was read."""
        if self.model is None:
            raise MultipartError("model field is required")

    def hold(self) -> None:
        """Hold the whole body (the caller feeds all of it before :meth:`rewrite`), to read its
        :meth:`fields`; only before :meth:`rewrite`."""
        if self._rewritten:
            raise RuntimeError("hold() after rewrite()")
        self.holds_body = True

    @property
    def complete(self) -> bool:
        """True once the closing boundary was fed."""
        return self._state is _State.END

    def fields(self) -> list[FormField]:
        """Every part of a held, complete body in order: text fields with their values, file parts by name.

        Raises:
            MultipartError: the body ends before its closing boundary, or a text field is not UTF-8 or
                declares a Content-Transfer-Encoding.
        """
        if not self.holds_body or self._rewritten:
            raise RuntimeError("fields() needs a held body, before rewrite()")
        if not self.complete:
            raise MultipartError("the multipart body ends before its closing boundary")
        out: list[FormField] = []
        for part, start, end in self._parts:
            if part.is_file:
                out.append(FormField(part.name, None))
                continue
            if not part.identity_encoding:
                raise MultipartError("a multipart text field must not use a Content-Transfer-Encoding")
            try:
                out.append(FormField(part.name, bytes(self._buf[start:end]).decode("utf-8")))
            except UnicodeDecodeError:
                raise MultipartError("a multipart text field is not valid UTF-8") from None
        return out

    def rewrite(self, new_model: str, values: Mapping[int, str] | None = None) -> bytes:
        """All that was fed, with the model value replaced by ``new_model`` and, held, the value of each text
        field numbered in ``values`` (its index in :meth:`fields`) by the value given.

        Streamed, the result is followed by the rest of the body, verbatim (through :meth:`relay`). Raises
        ``RuntimeError`` before the model field was read or on a second call, and ``ValueError`` if
        ``new_model`` contains a line break, or ``values`` numbers a file part, the model field or no part;
        :class:`MultipartError` (a 400) if it gives a value containing the boundary delimiter.
        """
        if self.model is None or self._rewritten:
            raise RuntimeError("rewrite() needs a model field read by feed(), once")
        edits = {self._model_index: _encode(new_model)}
        for index, value in (values or {}).items():
            edits[index] = self._encode_value(index, value)
        shift = 0
        for index in sorted(edits, reverse=True):  # from the end: earlier spans stay where they are
            _, start, end = self._parts[index]
            self._buf[start:end] = edits[index]  # in place: the one copy is the bytes returned
            shift += len(edits[index]) - (end - start)
        self._pos, self._search = self._pos + shift, self._search + shift
        out = bytes(self._buf)
        self._rewritten = True
        self._compact()
        return out

    def _encode_value(self, index: int, value: str) -> bytes:
        if not 0 <= index < len(self._parts) or index == self._model_index or self._parts[index][0].is_file:
            raise ValueError("only the value of a text field other than model can be replaced")
        encoded = value.encode("utf-8")
        if self._delimiter in encoded:  # it would end the part early (no border: the delimiter has one CR)
            # a client can bring this about (a boundary and a value made so that a placeholder completes the
            # delimiter): a 400, not a server error
            raise MultipartError("a redacted field would contain the boundary; send another boundary")
        return encoded

    def length_delta(self, new_model: str) -> int:
        """How many bytes :meth:`rewrite` adds to (or, if negative, removes from) the body."""
        if self.model is None:
            raise RuntimeError("length_delta() needs a model field read by feed()")
        _, start, end = self._parts[self._model_index]
        return len(_encode(new_model)) - (end - start)

    def relay(self, data: bytes) -> bytes:
        """Pass a chunk of the rest of the body after :meth:`rewrite`; returns ``data`` unchanged.

        Raises:
            MultipartError: a later part is also named ``model``, or the framing is malformed.
        """
        if not self._rewritten:
            raise RuntimeError("relay() before rewrite()")
        if self._state is not _State.END:
            self._buf += data
            self._advance()
            self._compact()
        return data

    def _advance(self) -> None:
        steps = {
            _State.PREAMBLE: self._preamble,
            _State.BOUNDARY: self._boundary_line,
            _State.HEADERS: self._headers,
            _State.BODY: self._body,
        }
        while self._state is not _State.END and steps[self._state]():
            pass

    def _goto(self, state: _State, pos: int) -> bool:
        self._state, self._pos, self._search = state, pos, pos
        return True

    def _preamble(self) -> bool:
        buf, dash = self._buf, self._delimiter[2:]
        if buf.startswith(dash):
            return self._goto(_State.BOUNDARY, len(dash))
        if len(buf) < len(dash) and dash.startswith(buf):
            return False
        return self._find_delimiter()

    def _boundary_line(self) -> bool:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 2:
            return False
        if buf[pos : pos + 2] == b"--":
            if self.model is None:
                raise MultipartError("model field is required")
            return self._goto(_State.END, pos + 2)
        eol = buf.find(b"\r\n", pos, pos + _MAX_PADDING)
        padding = buf[pos:eol] if eol >= 0 else buf[pos : pos + _MAX_PADDING].rstrip(b"\r")
        if padding.strip(b" \t") or (eol < 0 and len(buf) - pos >= _MAX_PADDING):
            raise MultipartError("malformed multipart boundary line")
        return eol >= 0 and self._goto(_State.HEADERS, eol + 2)

    def _headers(self) -> bool:
        buf, pos = self._buf, self._pos
        if buf[pos : pos + 2] == b"\r\n":
            raise MultipartError("a multipart part has no Content-Disposition")
        end = buf.find(b"\r\n\r\n", self._search)
        if end < 0:
            if len(buf) - pos > self.max_head:
                raise MultipartError("multipart part headers are too large")
            self._search = max(pos, len(buf) - 3)
            return False
        self._part = _Part.from_headers(bytes(buf[pos:end]))
        self._check_part(self._part)
        return self._goto(_State.BODY, end + 4)

    def _check_part(self, part: _Part) -> None:
        if self.model is not None:
            if part.name == "model":
                raise MultipartError("the model field must appear only once")
        elif part.name == "model":
            if part.is_file:
                raise MultipartError("the model field must be a text field, not a file")
            if not part.identity_encoding:
                raise MultipartError("the model field must not use a Content-Transfer-Encoding")
        elif part.is_file:
            self.holds_body = True

    def _body(self) -> bool:
        start = self._pos
        if not self._find_delimiter():
            return False
        part, end = self._part, self._pos - len(self._delimiter)
        if part is not None and not self._rewritten:  # after rewrite (streamed) nothing is kept
            self._parts.append((part, start, end))
            if self.model is None and part.name == "model":
                self._model_index = len(self._parts) - 1
                self._take_model(start, end)
        return True

    def _find_delimiter(self) -> bool:
        buf, delimiter = self._buf, self._delimiter
        found = buf.find(delimiter, self._search)
        if found < 0:
            self._search = max(self._pos, len(buf) - len(delimiter) + 1)
            return False
        return self._goto(_State.BOUNDARY, found + len(delimiter))

    def _take_model(self, start: int, end: int) -> None:
        if end + len(self._delimiter) > self.max_head:
            self.holds_body = True
        try:
            model = bytes(self._buf[start:end]).decode("utf-8").strip()
        except UnicodeDecodeError:
            raise MultipartError("the model field is not valid UTF-8") from None
        if not model:
            raise MultipartError("model field is required")
        self.model = model

    def _compact(self) -> None:
        """After rewrite, drop what the scanner no longer needs: in a file part, all but a delimiter's
        length of its tail."""
        if self._state is _State.END:
            keep = len(self._buf)
        elif self._state is _State.BODY:
            keep = self._search
        else:
            keep = self._pos
        del self._buf[:keep]
        self._pos, self._search = max(self._pos - keep, 0), max(self._search - keep, 0)


def _encode(model: str) -> bytes:
    if "\r" in model or "\n" in model:
        raise ValueError("a model name must not contain a line break")
    return model.encode("utf-8")
