"""Reading CSV files as people really send them: the encoding and delimiter found out, quoted
fields over several lines, binary files refused, and every row with its line number."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext as _
from tqdm import tqdm

from embudo.csvimport.report import ImportFileError

DEFAULT_MAX_IMPORT_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Record:
    """One data row: its first line in the file and its raw cell values."""

    line: int
    values: list[str]


# Bytes cp1252 leaves undefined; a file holding them is read as Latin-1 instead.
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
_DELIMITERS = (",", ";", "\t", "|")


class _CountingReader(io.RawIOBase):
    """A binary file that reports how many bytes have been read, for a byte-based progress bar."""

    def __init__(self, raw: IO[bytes], on_read: Callable[[int], Any]) -> None:
        self._raw = raw
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self._on_read(count)
        return count or 0

    def close(self) -> None:
        self._raw.close()
        super().close()


class CsvSource:
    """A CSV file as people really send them, read as a stream of :class:`Record`.

    UTF-8 with or without BOM, UTF-16 with BOM, else cp1252 (Latin-1 when cp1252 cannot
    decode it); CRLF or LF; ``,`` ``;`` tab or ``|`` delimited; quoted fields may span lines.
    Blank lines are skipped; line numbers are the file's, so errors point where users look.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        delimiter: str | None = None,
        encoding: str | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ImportFileError(_("there is no file at %(path)s") % {"path": self.path})
        self.size = self.path.stat().st_size
        configured = getattr(settings, "EMBUDO_MAX_IMPORT_BYTES", None)
        limit = max_bytes or (int(configured) if configured else DEFAULT_MAX_IMPORT_BYTES)
        if self.size > limit:
            raise ImportFileError(
                _(
                    "the file is %(size)s, over the import limit of %(limit)s; split it into "
                    "smaller files or raise EMBUDO_MAX_UPLOAD_MB"
                )
                % {"size": _human_bytes(self.size), "limit": _human_bytes(limit)}
            )
        if self.size == 0:
            raise ImportFileError(_("the file is empty"))
        self.encoding = encoding or _detect_encoding(self.path)
        if delimiter is not None and len(delimiter) != 1:
            raise ImportFileError(_("the delimiter must be one character, not %r") % delimiter)
        self.delimiter = delimiter or self._sniff_delimiter()
        self.header, self.header_line = self._read_header()

    def open_text(self, on_read: Callable[[int], Any] | None = None) -> IO[str]:
        raw: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - closed by the wrapper returned
        if on_read is not None:
            raw = io.BufferedReader(_CountingReader(raw, on_read))  # type: ignore[assignment]
        return io.TextIOWrapper(raw, encoding=self.encoding, newline="")

    def _not_decodable(self, error: UnicodeDecodeError) -> ImportFileError:
        # Text is decoded a block ahead of the CSV reader, so no line number would be honest.
        return ImportFileError(
            _(
                "the file is not %(encoding)s text (%(reason)s); leave out --encoding to let "
                "Embudo detect it"
            )
            % {"encoding": self.encoding, "reason": error.reason}
        )

    def _sniff_delimiter(self) -> str:
        # csv.Sniffer guesses badly from a single line, and the header is the one line whose
        # cells seldom hold a delimiter: the candidate it holds most often (outside quotes) wins.
        with self.open_text() as text:
            try:
                header = next((line for line in text if line.strip()), None)
            except UnicodeDecodeError as error:
                raise self._not_decodable(error) from None
        if header is None:
            raise ImportFileError(_("the file is empty"))
        unquoted = re.sub(r'"[^"]*"', "", header)
        counts = {d: unquoted.count(d) for d in _DELIMITERS}
        best = max(_DELIMITERS, key=lambda d: counts[d])
        return best if counts[best] else ","

    def _reader(self, text: IO[str]) -> Iterator[tuple[int, list[str]]]:
        """(first line, values) of each non-blank CSV record."""
        reader = csv.reader(text, delimiter=self.delimiter)
        previous = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as error:
                raise self._not_decodable(error) from None
            except csv.Error as error:
                raise ImportFileError(
                    _(
                        'line %(line)s: the file cannot be read as CSV (%(error)s); a quote (") '
                        "that is never closed is the usual cause"
                    )
                    % {"line": previous + 1, "error": error}
                ) from None
            line = previous + 1
            previous = reader.line_num
            if any(value.strip() for value in values):
                yield line, values

    def _read_header(self) -> tuple[list[str], int]:
        with self.open_text() as text:
            for line, values in self._reader(text):
                header = [value.strip() for value in values]
                if header and header[0].startswith("ï»¿"):
                    # A UTF-8 byte-order mark in a file that is otherwise cp1252.
                    header[0] = header[0][3:].strip()
                header = [value.lstrip("\ufeff") for value in header]
                while header and not header[-1]:
                    header.pop()
                return header, line
        raise ImportFileError(_("the file is empty: it has no header row"))

    def records(self, progress: tqdm | None = None) -> Iterator[Record]:
        """Every data row after the header, streamed from the file."""
        on_read = progress.update if progress is not None else None
        with self.open_text(on_read) as text:
            rows = self._reader(text)
            for line, _values in rows:
                if line >= self.header_line:
                    break
            for line, values in rows:
                yield Record(line, values)


def _detect_encoding(path: Path) -> str:
    """The file's encoding, from one streaming pass over its bytes; refuses binary files."""
    with open(path, "rb") as raw:
        head = raw.read(4)
        if head.startswith(b"PK\x03\x04"):
            raise ImportFileError(
                _(
                    "this is a spreadsheet or zip archive (an .xlsx file?), not CSV; "
                    "save it as CSV (UTF-8) first"
                )
            )
        if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return "utf-16"
        raw.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        utf8, cp1252, offset = True, True, 0
        while chunk := raw.read(1 << 20):
            nul = chunk.find(b"\x00")
            if nul >= 0:
                raise ImportFileError(
                    _(
                        "the file holds NUL bytes (the first at byte %(offset)s): it is a binary "
                        "file, not CSV text; save it as CSV first"
                    )
                    % {"offset": offset + nul}
                )
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
            if cp1252 and any(byte in chunk for byte in _CP1252_UNDEFINED):
                cp1252 = False
            offset += len(chunk)
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
    if utf8:
        return "utf-8-sig"
    return "cp1252" if cp1252 else "latin-1"


def _human_bytes(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"
