"""Bytes in, CSV records out, each with the physical line where it starts.

The file is read once, a block of lines at a time, so a file of any size costs little
memory. The encoding and the delimiter are decided from the start of the file; a line
that cannot be decoded later on spoils only its own record (the row is rejected, the
file is not).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import uuid
from collections.abc import Iterable, Iterator
from typing import AnyStr, BinaryIO, TypeAlias

SAMPLE_BYTES = 64 * 1024
MAX_COLUMNS = 200
# A longer physical line is rejected as a row and skipped, so one runaway line (a
# missing newline, a binary blob) can never be held in memory whole.
MAX_LINE_BYTES = 1024 * 1024
DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
WINDOWS_1252_NOTE = "The file is not UTF-8; it was read as Windows-1252."
BLOCK_BYTES = 1024 * 1024
LINE_TOO_LONG = f"line too long: longer than {MAX_LINE_BYTES // (1024 * 1024)} MB"
# Stand in for an overlong line (by identity): one cell, so the row is not taken as blank.
OVERLONG_LINES = {b"\n": b"(line too long)\n", b"\r": b"(line too long)\r"}
# A last line after the file's own: the CSV reader, unlike a person, takes a quote never
# closed as running to the end of the file. If the marker ends up inside a value, the
# record it belongs to had such a quote (no file holds this random text).
END_OF_FILE = f"\x00end of file {uuid.uuid4()}"
# PostgreSQL text cannot hold NUL: a row with one (past the sample, which would have
# refused the file as binary) is rejected, and reported with its NULs left out.
NUL_PROBLEM = "NUL character: this row holds a NUL byte (is the file binary?)"
UNCLOSED_QUOTE = 'unreadable row: a quote (") opened in this row is never closed'

# (line where the record starts, its cells, a problem that spoils the row or "")
RawRow: TypeAlias = tuple[int, list[str], str]


class ImportRefused(Exception):
    """The file as a whole cannot be imported: a "fatal" error, the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CsvFile:
    """A CSV file being read: its encoding, delimiter and header, then its records.

    ``stream`` must be a seekable binary file: the start is read twice (once to detect
    the encoding and delimiter, once as data). Raises :class:`ImportRefused` when the
    file is empty, binary, or has no usable header.
    """

    def __init__(self, stream: BinaryIO, *, max_columns: int = MAX_COLUMNS) -> None:
        self._stream = stream
        # Lines that spoil the record they belong to, with the reason.
        self._spoiled_lines: dict[int, str] = {}
        self._bytes_read = 0
        self.notes: list[str] = []
        stream.seek(0)
        sample = stream.read(SAMPLE_BYTES)
        self.encoding, start = _detect_encoding(sample)
        if self.encoding == "windows-1252":
            self.notes.append(WINDOWS_1252_NOTE)
        stream.seek(start)
        lines = self._decoded_lines(sample)
        # The CSV reader counts only the lines it is given: remember the blank ones
        # skipped here so that line numbers stay those of the file.
        self._lines_before_header = 0
        for first_line in lines:
            if first_line.strip():
                break
            self._lines_before_header += 1
        else:
            raise ImportRefused("The file is empty: there is no header line.")
        self.delimiter = _detect_delimiter(first_line)
        self._reader = csv.reader(
            itertools.chain([first_line], lines, [END_OF_FILE + "\n"]),
            delimiter=self.delimiter,
            skipinitialspace=True,
        )
        header = self._read_header()
        self.raw_headers = [cell.strip() for cell in header]
        if len(self.raw_headers) > max_columns:
            raise ImportRefused(
                f"The header has {len(self.raw_headers)} columns; at most {max_columns} "
                "are supported. Is this the right file?"
            )

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES[self.delimiter]

    def rows(self) -> Iterator[RawRow]:
        """Every non-blank record after the header, with the line where it starts."""
        reader = self._reader
        offset = self._lines_before_header
        previous_end = reader.line_num + offset
        spoiled = self._spoiled_lines
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                start, previous_end = previous_end + 1, reader.line_num + offset
                if spoiled:
                    self._take_problem(start, previous_end)
                yield (start, [], f"unreadable row: {error}")
                continue
            start, previous_end = previous_end + 1, reader.line_num + offset
            # Swallowed, the marker is in the value being read at the end: the last one.
            if cells and END_OF_FILE in cells[-1]:
                if cells != [END_OF_FILE]:
                    yield (start, [], UNCLOSED_QUOTE)
                return
            problem = self._take_problem(start, previous_end) if spoiled else ""
            if any(cells):
                yield (start, cells, problem)

    def _take_problem(self, start: int, end: int) -> str:
        """The problem of a record's lines, forgotten once met: bad lines cost no memory."""
        problems = [self._spoiled_lines.pop(line, "") for line in range(start, end + 1)]
        return next((problem for problem in problems if problem), "")

    def _read_header(self) -> list[str]:
        for cells in self._reader:
            if cells and END_OF_FILE in cells[-1]:
                if cells == [END_OF_FILE]:
                    break
                raise ImportRefused('The header has a quote (") that is never closed.')
            if any(cell.strip() for cell in cells):
                return cells
        raise ImportRefused("The file is empty: there is no header line.")

    def _decoded_lines(self, sample: bytes) -> Iterator[str]:
        if self.encoding == "utf-16":
            return self._utf16_lines()
        decoder = "utf-8" if self.encoding in {"utf-8", "utf-8-sig"} else "cp1252"
        # Old Mac files end lines with CR alone.
        terminator = "\r" if b"\n" not in sample and b"\r" in sample else "\n"
        return itertools.chain.from_iterable(self._decoded_blocks(decoder, terminator))

    def _decoded_blocks(self, decoder: str, terminator: str) -> Iterator[Iterable[str]]:
        """The file's lines, a block of whole lines at a time.

        A block is decoded at once and split by C code (the common case, and fast);
        only a block holding undecodable bytes is decoded line by line, to find them.
        """
        lines_before = 0
        byte_terminator = terminator.encode()
        for block in _blocks_of_lines(self._stream, byte_terminator):
            self._bytes_read += len(block)
            if block is OVERLONG_LINES[byte_terminator]:
                self._spoiled_lines[lines_before + 1] = LINE_TOO_LONG
            try:
                if b"\x00" in block:
                    raise UnicodeDecodeError(decoder, block, 0, 1, "NUL byte")
                text = block.decode(decoder)
            except UnicodeDecodeError:
                yield self._decode_line_by_line(block, decoder, terminator, lines_before)
            else:
                if terminator == "\n":
                    # Splits after "\n", "\r\n" and a lone "\r" (a file whose line ends
                    # are mixed), keeping them: the CSV reader refuses a "\r" inside a line.
                    yield io.StringIO(text, newline="")
                else:
                    yield _split_keeping_terminator(text, terminator)
            lines_before += _line_count(block, byte_terminator)

    def _decode_line_by_line(
        self, block: bytes, decoder: str, terminator: str, lines_before: int
    ) -> list[str]:
        lines = []
        # Split as the decoded block would be (bytes.splitlines knows only \n, \r\n, \r).
        split_lines = (
            block.splitlines(keepends=True)
            if terminator == "\n"
            else _split_keeping_terminator(block, terminator.encode())
        )
        for number, line in enumerate(split_lines, start=lines_before + 1):
            if b"\x00" in line:
                self._spoiled_lines[number] = NUL_PROBLEM
                line = line.replace(b"\x00", b"")
            try:
                lines.append(line.decode(decoder))
            except UnicodeDecodeError:
                self._spoiled_lines[number] = _undecodable_problem(self.encoding)
                lines.append(line.decode(decoder, "replace"))
        return lines

    def _utf16_lines(self) -> Iterator[str]:
        # UTF-16 cannot be split into lines as bytes; let the codec do it. A broken
        # sequence becomes U+FFFD, which marks its line as undecodable.
        text = io.TextIOWrapper(self._stream, encoding="utf-16", errors="replace", newline="")
        for line_number, line in enumerate(text, start=1):
            self._bytes_read = self._stream.tell()
            if "\ufffd" in line:
                self._spoiled_lines[line_number] = _undecodable_problem(self.encoding)
            if "\x00" in line:
                self._spoiled_lines[line_number] = NUL_PROBLEM
                line = line.replace("\x00", "")
            yield line


def _detect_encoding(sample: bytes) -> tuple[str, int]:
    """The encoding of a file that starts with ``sample``, and where its text starts."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", 0
    if sample.startswith(codecs.BOM_UTF8):
        encoding, start = "utf-8-sig", len(codecs.BOM_UTF8)
    else:
        encoding, start = "utf-8", 0
    if not sample[start:].strip():
        raise ImportRefused("The file is empty: there is no header line.")
    if b"\x00" in sample:
        raise ImportRefused(_binary_file_message(sample))
    if encoding == "utf-8":
        try:
            # The sample may end inside a character: only complete ones must be valid.
            codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        except UnicodeDecodeError:
            return "windows-1252", 0
    return encoding, start


def _binary_file_message(sample: bytes) -> str:
    if sample.startswith(b"PK\x03\x04"):
        kind = "This looks like an Excel workbook or another zip file, not a CSV file."
    elif sample[1::2].count(0) > len(sample) // 4 or sample[0::2].count(0) > len(sample) // 4:
        kind = "This looks like UTF-16 text without a byte order mark."
    else:
        kind = "This is a binary file, not a CSV text file (it contains NUL bytes)."
    return f"{kind} Save the spreadsheet as \u201cCSV UTF-8\u201d and upload that file."


def _detect_delimiter(header_line: str) -> str:
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _undecodable_problem(encoding: str) -> str:
    name = {"windows-1252": "Windows-1252", "utf-16": "UTF-16"}.get(encoding, "UTF-8")
    return f"undecodable bytes: this row is not valid {name} text"


def _line_count(block: bytes, terminator: bytes) -> int:
    """The lines that end in ``block``; with "\n" line ends, a lone "\r" ends one too."""
    if terminator == b"\r":
        return block.count(b"\r")
    return block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")


def _split_keeping_terminator(text: AnyStr, terminator: AnyStr) -> list[AnyStr]:
    pieces = text.split(terminator)
    last = pieces.pop()
    lines = [piece + terminator for piece in pieces]
    if last:
        lines.append(last)
    return lines


def _blocks_of_lines(stream: BinaryIO, terminator: bytes) -> Iterator[bytes]:
    """Blocks of about ``BLOCK_BYTES`` that end at a line end (the last one may not).

    A line longer than ``MAX_LINE_BYTES`` is skipped and stands as one overlong-line
    marker, so that a runaway line is never held in memory whole.
    """
    pending = b""
    skipping_overlong_line = False
    while chunk := stream.read(BLOCK_BYTES):
        if skipping_overlong_line:
            end = chunk.find(terminator)
            if end < 0:
                continue
            skipping_overlong_line = False
            yield OVERLONG_LINES[terminator]
            chunk = chunk[end + 1 :]
        data = pending + chunk if pending else chunk
        cut = data.rfind(terminator) + 1
        if cut:
            yield data[:cut]
            pending = data[cut:]
        else:
            pending = data
        if len(pending) > MAX_LINE_BYTES:
            pending, skipping_overlong_line = b"", True
    if skipping_overlong_line:
        yield OVERLONG_LINES[terminator]
    elif pending:
        yield pending
