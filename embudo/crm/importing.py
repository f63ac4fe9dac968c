"""CSV import: reading real-world files, mapping their headers to fields, row-level errors, one
transaction per run, and the contacts and companies importers.

Other apps add kinds (deals, events, costs…) by registering an :class:`Importer` in
:data:`IMPORTERS` from their own ``importing`` module; `embudo import KIND FILE` discovers them.
They reuse :class:`CsvSource` (encoding, delimiter, line numbers), :class:`ErrorReport`,
:func:`map_columns` and :class:`TableImport` (check pass, then chunked writes), and
:func:`run_import` gives every kind the same atomicity, dry run and audit entry.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import gc
import io
import re
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Model, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from tqdm import tqdm

from embudo.accounts.actions import record_audit
from embudo.crm.actions import CONTACT_FIELDS, after_commit, contacts_moved, define_property
from embudo.crm.models import (
    FUNNEL_ORDER,
    Company,
    Contact,
    LeadStatus,
    LifecycleStage,
    LifecycleTransition,
    ObjectType,
    PropertyDefinition,
    PropertyType,
    TransitionCause,
)
from embudo.crm.properties import (
    PropertyValueError,
    coerce,
    parse_boolean,
    parse_date,
    parse_datetime,
    parse_number,
    property_name,
)
from embudo.db.bulk import insert_rows, update_rows
from embudo.errors import EmbudoError, ValidationFailed

DEFAULT_MAX_IMPORT_BYTES = 100 * 1024 * 1024
# Rows written per round of look-ups and bulk writes: big enough that queries are few, small
# enough that a chunk's objects never weigh much.
WRITE_CHUNK = 1000
# Past this many problems only the count grows, so a file where every row is wrong cannot
# exhaust memory with its own error report.
MAX_ERRORS_KEPT = 100_000
# Custom-property types a column can be inferred as, narrowest first (as properties.infer_type).
_INFERABLE: tuple[str, ...] = (PropertyType.BOOLEAN, PropertyType.NUMBER, PropertyType.DATE)
_TYPE_PARSERS: dict[str, Callable[[str], Any]] = {
    PropertyType.BOOLEAN: parse_boolean,
    PropertyType.NUMBER: parse_number,
    PropertyType.DATE: parse_date,
}
_OVERRIDABLE_TYPES = (
    PropertyType.TEXT,
    PropertyType.NUMBER,
    PropertyType.BOOLEAN,
    PropertyType.DATE,
)


class ImportFileError(EmbudoError):
    """The file as a whole cannot be imported (unreadable, no header, bad mapping…)."""


class RowValueError(EmbudoError, ValueError):
    """One cell's value cannot be used; the message says why."""


# -- the error report ---------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class RowError:
    """A problem in one row: ``line`` is the file's line number (the header is line 1)."""

    line: int
    column: str
    problem: str

    def __str__(self) -> str:
        if self.column:
            return _("line %(line)s, column %(column)s: %(problem)s") % {
                "line": self.line,
                "column": repr(self.column),
                "problem": self.problem,
            }
        return _("line %(line)s: %(problem)s") % {"line": self.line, "problem": self.problem}


class ErrorReport:
    """Every row problem of one import run, and which lines they make invalid."""

    def __init__(self) -> None:
        self._errors: list[RowError] = []
        self.count = 0
        self.invalid_lines: set[int] = set()

    def add(self, line: int, column: str, problem: str) -> None:
        self.count += 1
        self.invalid_lines.add(line)
        if len(self._errors) < MAX_ERRORS_KEPT:
            self._errors.append(RowError(line, column, problem))

    def __len__(self) -> int:
        return self.count

    @property
    def errors(self) -> list[RowError]:
        return sorted(self._errors)

    @property
    def truncated(self) -> bool:
        return self.count > len(self._errors)

    def write_csv(self, path: str | Path) -> None:
        write_errors_csv(self.errors, path)


def write_errors_csv(errors: Iterable[RowError], path: str | Path) -> None:
    """The report as CSV (line, column, problem), to fix the file with a spreadsheet beside it."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "column", "problem"])
        for error in errors:
            writer.writerow([error.line, error.column, error.problem])


# -- reading real-world CSV ---------------------------------------------------------------------


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


# -- header mapping -----------------------------------------------------------------------------


def normalize_header(header: str) -> str:
    """The key headers are matched by: ``"E-mail Address"`` and ``"email_address"`` agree."""
    decomposed = unicodedata.normalize("NFKD", header.lower())
    return re.sub(r"[^a-z0-9]", "", decomposed.encode("ascii", "ignore").decode())


FIELD = "field"
PROPERTY = "property"
STAGE_DATE = "stage_date"


@dataclass
class Column:
    """Where one column of the file goes."""

    index: int
    header: str
    kind: str  # FIELD, PROPERTY or STAGE_DATE
    target: str  # the field name, property name, or stage
    type: str = ""  # a property's type; "" while it is still to be inferred from the file
    choices: list[str] = field(default_factory=list)
    declared: bool = False  # the property already exists (or its type was given)


@dataclass(frozen=True)
class FieldSpec:
    """A built-in field an importer fills: how a cell becomes its value, and its other names."""

    name: str
    parse: Callable[[str], Any]
    aliases: tuple[str, ...] = ()


@dataclass
class ImportOptions:
    mapping: dict[str, str] = field(default_factory=dict)  # source column → field
    id_column: str | None = None
    types: dict[str, str] = field(default_factory=dict)  # source column → property type
    dry_run: bool = False
    skip_invalid: bool = False
    delimiter: str | None = None
    encoding: str | None = None
    progress: bool = False
    actor: Any = None


@dataclass
class ImportResult:
    kind: str
    file: str
    dry_run: bool = False
    committed: bool = False
    rows: int = 0  # data rows read (blank lines not counted)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # invalid rows left out under --skip-invalid
    properties: dict[str, str] = field(default_factory=dict)  # new property → type
    counts: dict[str, int] = field(default_factory=dict)  # kind-specific, e.g. companies_created
    notes: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    # Ids of the records created or changed, for the AFTER_IMPORT hooks (rescoring, say).
    changed_ids: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "properties": self.properties,
            **self.counts,
        }


def map_columns(
    header: Sequence[str],
    *,
    fields: Mapping[str, FieldSpec],
    options: ImportOptions,
    object_type: str | None,
    stage_of: Callable[[str], str | None] = lambda key: None,
    read_only: Iterable[str] = (),
) -> tuple[list[Column], list[str]]:
    """Decide where each column goes; returns the columns and notes on those left out.

    Order of precedence: ``--map``, ``--id-column``, a built-in field by name or alias, a stage
    date (``became_mql_at``), a column Embudo computes itself (skipped), and otherwise a custom
    property of ``object_type``. Every problem found is reported at once.
    """
    problems: list[str] = []
    notes: list[str] = []
    keys = [normalize_header(h) for h in header]
    first_at: dict[str, int] = {}
    repeated: set[int] = set()
    for index, key in enumerate(keys):
        if not header[index]:
            continue
        if key in first_at:
            repeated.add(index)
            problems.append(
                _("columns %(a)s and %(b)s have the same name (%(name)r)")
                % {"a": first_at[key] + 1, "b": index + 1, "name": header[index]}
            )
        else:
            first_at[key] = index

    def column_named(name: str, option: str) -> int | None:
        index = first_at.get(normalize_header(name))
        if index is None:
            problems.append(
                _(
                    "%(option)s names column %(name)r, which the file does not have "
                    "(it has: %(cols)s)"
                )
                % {"option": option, "name": name, "cols": ", ".join(h for h in header if h)}
            )
        return index

    alias_to_field: dict[str, str] = {}
    for spec in fields.values():
        for alias in (spec.name, *spec.aliases):
            alias_to_field[normalize_header(alias)] = spec.name
    existing = (
        {d.name: d for d in PropertyDefinition.objects.filter(object_type=object_type)}
        if object_type
        else {}
    )
    builtin = _builtin_names(object_type) if object_type else set()

    chosen: dict[int, tuple[str, str]] = {}  # column index → (kind, target)
    ignored: set[int] = set()
    for source, target in options.mapping.items():
        mapped = column_named(source, "--map")
        if mapped is None:
            continue
        target = target.strip()
        key = normalize_header(target)
        if target == "-":
            ignored.add(mapped)
        elif key in alias_to_field:
            chosen[mapped] = (FIELD, alias_to_field[key])
        elif stage_of(key):
            chosen[mapped] = (STAGE_DATE, stage_of(key) or "")
        elif target.startswith("property:") and object_type:
            chosen[mapped] = (PROPERTY, property_name(target.removeprefix("property:")))
        elif property_name(target) in existing:
            chosen[mapped] = (PROPERTY, property_name(target))
        else:
            problems.append(
                _(
                    "--map %(source)r=%(target)r: %(target)r is not a field; use one of "
                    "%(fields)s, property:NAME for a custom property, or - to skip the column"
                )
                % {"source": source, "target": target, "fields": ", ".join(fields)}
            )
    if options.id_column:
        if "external_id" not in fields:
            problems.append(_("--id-column: this kind of record has no external id"))
        else:
            id_index = column_named(options.id_column, "--id-column")
            if id_index is not None:
                chosen[id_index] = (FIELD, "external_id")

    read_only_keys = {normalize_header(h) for h in read_only}
    columns: list[Column] = []
    for index, name in enumerate(header):
        if index in ignored:
            notes.append(_("column %r skipped (--map)") % name)
            continue
        if not name or index in repeated:
            continue  # a column without a name: its cells must stay empty (checked per row)
        key = keys[index]
        if index in chosen:
            kind, target = chosen[index]
        elif key in alias_to_field:
            kind, target = FIELD, alias_to_field[key]
        elif stage := stage_of(key):
            kind, target = STAGE_DATE, stage
        elif key in read_only_keys:
            notes.append(_("column %r is computed by Embudo and was not imported") % name)
            continue
        elif object_type is None:
            problems.append(_("column %r is not a field this kind of record has") % name)
            continue
        else:
            kind, target = PROPERTY, property_name(name)
            if not target:
                problems.append(
                    _("column %(n)s (%(name)r) has no letters or digits to name a property with")
                    % {"n": index + 1, "name": name}
                )
                continue
        if kind == PROPERTY and target in builtin:
            problems.append(
                _(
                    "column %(name)r would become the custom property %(target)r, which is a "
                    "built-in name; map it with --map %(name)r=FIELD, --id-column, or skip it "
                    "with --map %(name)r=-"
                )
                % {"name": name, "target": target}
            )
            continue
        column = Column(index=index, header=name, kind=kind, target=target)
        if kind == PROPERTY and target in existing:
            column.type = existing[target].type
            column.choices = list(existing[target].choices or [])
            column.declared = True
        columns.append(column)

    by_target: dict[tuple[str, str], Column] = {}
    for column in columns:
        other = by_target.setdefault((column.kind, column.target), column)
        if other is not column:
            problems.append(
                _("columns %(a)r and %(b)r both fill %(target)r; keep one or remap the other")
                % {"a": other.header, "b": column.header, "target": column.target}
            )

    for source, type_ in options.types.items():
        typed = column_named(source, "--type")
        if typed is None:
            continue
        type_ = type_.strip().lower()
        target_column = next((c for c in columns if c.index == typed), None)
        if type_ not in _OVERRIDABLE_TYPES:
            problems.append(
                _("--type %(source)r=%(type)r: the type must be one of %(types)s")
                % {"source": source, "type": type_, "types": ", ".join(_OVERRIDABLE_TYPES)}
            )
        elif target_column is None or target_column.kind != PROPERTY:
            problems.append(
                _("--type %r: only columns that become custom properties take a type") % source
            )
        elif target_column.declared and target_column.type != type_:
            problems.append(
                _("--type %(source)r=%(type)s: the property %(name)r already exists as %(old)s")
                % {
                    "source": source,
                    "type": type_,
                    "name": target_column.target,
                    "old": target_column.type,
                }
            )
        else:
            target_column.type = type_
    if problems:
        raise ImportFileError("\n".join(problems))
    return columns, notes


def _builtin_names(object_type: str) -> set[str]:
    """Names a custom property cannot take: the model's own fields (as define_property says)."""
    model: type[Model] = Contact if object_type == ObjectType.CONTACT else Company
    names = {f.name for f in model._meta.get_fields()}
    return names | {n.removesuffix("_id") for n in names} | {"id", "pk"}


# -- cell parsers -------------------------------------------------------------------------------


def text(max_length: int) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if len(raw) > max_length:
            raise RowValueError(
                _("the value is %(n)s characters long; at most %(max)s fit")
                % {"n": len(raw), "max": max_length}
            )
        return raw

    return parse


def _max_length(model: type[Model], name: str) -> int:
    return int(model._meta.get_field(name).max_length or 255)  # type: ignore[union-attr]


# Addresses of this plain shape pass Django's validator too, so only the others need it; it
# costs ten times more, which shows on a file of a million cells.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_EMAIL_MAX_LENGTH = 254  # Contact.email's column


def parse_email(raw: str) -> str:
    email = raw.lower()
    if len(email) > _EMAIL_MAX_LENGTH:
        raise RowValueError(
            _("the email address is %(n)s characters long; at most %(max)s fit")
            % {"n": len(email), "max": _EMAIL_MAX_LENGTH}
        )
    if _PLAIN_EMAIL.fullmatch(email) is None:
        try:
            validate_email(email)
        except DjangoValidationError:
            raise RowValueError(_("%r is not a valid email address") % raw) from None
    return email


def parse_domain(raw: str) -> str:
    """``https://www.Acme.com/about`` → ``acme.com``."""
    domain = re.sub(r"^[a-z]+://", "", raw.lower()).split("/", 1)[0].removeprefix("www.")
    if not domain or len(domain) > 255 or re.search(r"\s", domain):
        raise RowValueError(_("%r is not a domain name") % raw)
    return domain


def parse_when(raw: str) -> dt.datetime:
    try:
        return parse_datetime(raw)
    except ValueError:
        raise RowValueError(
            _("%r is not a date (use YYYY-MM-DD or YYYY-MM-DD HH:MM)") % raw
        ) from None


def choice_parser(names: Mapping[str, str], what: str) -> Callable[[str], str]:
    """A parser for an enum whose values may be written many ways (``"Marketing Qualified"``)."""

    def parse(raw: str) -> str:
        value = names.get(normalize_header(raw))
        if value is None:
            raise RowValueError(
                _("%(raw)r is not a %(what)s; use one of %(names)s")
                % {"raw": raw, "what": what, "names": ", ".join(dict.fromkeys(names.values()))}
            )
        return value

    return parse


def _stage_names() -> dict[str, str]:
    names = {normalize_header(value): value for value in LifecycleStage.values}
    names.update(
        {
            "marketingqualifiedlead": LifecycleStage.MQL,
            "marketingqualified": LifecycleStage.MQL,
            "salesqualifiedlead": LifecycleStage.SQL,
            "salesqualified": LifecycleStage.SQL,
            "suscriptor": LifecycleStage.SUBSCRIBER,
            "oportunidad": LifecycleStage.OPPORTUNITY,
            "cliente": LifecycleStage.CUSTOMER,
            "evangelizador": LifecycleStage.EVANGELIST,
            "descalificado": LifecycleStage.DISQUALIFIED,
        }
    )
    return names


STAGE_NAMES = _stage_names()
LEAD_STATUS_NAMES = {
    **{normalize_header(value): value for value in LeadStatus.values},
    "open": LeadStatus.NEW,
    "attemptedtocontact": LeadStatus.ATTEMPTING,
    "inprogress": LeadStatus.CONNECTED,
    "opendeal": LeadStatus.QUALIFIED,
    "badtiming": LeadStatus.RECYCLED,
    "contacted": LeadStatus.CONNECTED,
    "nuevo": LeadStatus.NEW,
    "cualificado": LeadStatus.QUALIFIED,
    "nocualificado": LeadStatus.UNQUALIFIED,
}


def stage_of_date_column(key: str) -> str | None:
    """The stage a date column records: ``became_mql_at``, "Became a Customer Date"…"""
    if not key.startswith("became"):
        return None
    rest = key.removeprefix("became")
    for suffix in ("date", "at", "on"):
        if rest.endswith(suffix) and rest[: -len(suffix)]:
            rest = rest[: -len(suffix)]
            break
    for article in ("", "an", "a"):
        if rest.startswith(article) and (stage := STAGE_NAMES.get(rest[len(article) :])):
            return stage
    return None


def _funnel_rank(stage: str) -> int:
    return FUNNEL_ORDER.index(stage) if stage in FUNNEL_ORDER else len(FUNNEL_ORDER)


# -- the run: one transaction, dry run, audit ---------------------------------------------------


@dataclass(frozen=True)
class Importer:
    """A kind `embudo import` knows: ``run`` reads the source, reports row problems to the
    report, counts its work in the result, and writes through the ORM; the caller owns the
    transaction, so ``run`` never commits."""

    kind: str
    run: Callable[[CsvSource, ImportOptions, ImportResult, ErrorReport], None]
    description: Any = ""  # a (lazily translated) line for `embudo import --help`


IMPORTERS: dict[str, Importer] = {}

# Called once an import has committed, with its result: other apps react to the whole run at
# once (rescore the changed contacts, say) instead of per record. Imports skip the per-record
# side effects of crm.actions (owner notifications, workflows) on purpose: history is not news.
AFTER_IMPORT: list[Callable[[ImportResult], None]] = []


def register_importer(importer: Importer) -> Importer:
    IMPORTERS[importer.kind] = importer
    return importer


def discover_importers() -> dict[str, Importer]:
    """Import every installed app's ``importing`` module, so each registers its kinds."""
    autodiscover_modules("importing")
    return IMPORTERS


class _RollBack(Exception):
    """Leaves the import's transaction without writing anything."""


def run_import(kind: str, path: str | Path, options: ImportOptions | None = None) -> ImportResult:
    """Import ``path`` as ``kind`` in one transaction.

    Nothing is written when the run is a dry run, or when a row is invalid and ``skip_invalid``
    is off; then ``result.committed`` is False and ``result.errors`` says why.
    """
    options = options or ImportOptions()
    importer = discover_importers().get(kind)
    if importer is None:
        raise ImportFileError(
            _("unknown kind %(kind)r; Embudo can import: %(kinds)s")
            % {"kind": kind, "kinds": ", ".join(sorted(IMPORTERS))}
        )
    source = CsvSource(path, delimiter=options.delimiter, encoding=options.encoding)
    result = ImportResult(kind=kind, file=str(path), dry_run=options.dry_run)
    report = ErrorReport()
    try:
        with transaction.atomic(), _collector_paused():
            importer.run(source, options, result, report)
            result.errors, result.error_count = report.errors, len(report)
            result.skipped = len(report.invalid_lines)
            if options.dry_run or (len(report) and not options.skip_invalid):
                raise _RollBack
            record_audit(
                "import",
                kind[:32],
                actor=options.actor,
                changes={**result.summary(), "file": Path(path).name},
            )
            result.committed = True
            for hook in AFTER_IMPORT:
                after_commit(hook, result)
    except _RollBack:
        pass
    except IntegrityError as error:
        # Only a concurrent writer can get here: every key was checked inside this transaction.
        raise ImportFileError(
            _("the database refused the import, nothing was written (%s); run it again") % error
        ) from None
    return result


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector: an import allocates millions of short-lived objects while
    holding a large index of keys, and each automatic pass would scan that index again (a
    quarter of the run's time, measured). Reference counting still frees everything an import
    makes; any cycle left is collected once the collector resumes."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def progress_bar(enabled: bool, **kwargs: Any) -> Iterator[tqdm]:
    bar = tqdm(file=sys.stderr, disable=not enabled, dynamic_ncols=True, **kwargs)
    try:
        yield bar
    finally:
        bar.close()


# -- a table of records, in two streaming passes ------------------------------------------------


@dataclass
class ParsedRow:
    line: int
    fields: dict[str, Any] = field(default_factory=dict)  # only the non-empty cells
    properties: dict[str, Any] = field(default_factory=dict)
    stage_dates: list[tuple[str, dt.datetime]] = field(default_factory=list)


class TableImport:
    """Import rows of one model: a checking pass over the whole file (cell values, duplicate keys
    within the file, custom property types), then a writing pass in chunks of
    :data:`WRITE_CHUNK` rows, each chunk looked up and written with set-based queries.

    Subclasses give ``fields``, ``keys`` (values that must be unique within the file) and
    ``write_chunk``.
    """

    object_type: ClassVar[str | None] = None
    noun: ClassVar[str] = "rows"

    def __init__(
        self,
        source: CsvSource,
        options: ImportOptions,
        result: ImportResult,
        report: ErrorReport,
    ) -> None:
        self.source, self.options, self.result, self.report = source, options, result, report
        self.now = timezone.now()
        self.fields = self.field_specs()
        self.columns, notes = map_columns(
            source.header,
            fields=self.fields,
            options=options,
            object_type=self.object_type,
            stage_of=self.stage_of,
            read_only=self.read_only_columns(),
        )
        result.notes.extend(notes)
        self.width = len(source.header)
        # Each built-in field's column header, to name it in row errors.
        self.headers = {c.target: c.header for c in self.columns if c.kind == FIELD}
        self.unnamed = [index for index, name in enumerate(source.header) if not name]

    # Hooks for subclasses.
    def field_specs(self) -> dict[str, FieldSpec]:
        raise NotImplementedError

    def stage_of(self, key: str) -> str | None:
        return None

    def read_only_columns(self) -> Iterable[str]:
        return ()

    # The fields that identify a record, with the words row errors call them by.
    key_labels: ClassVar[dict[str, Any]] = {}

    def keys(self, row: ParsedRow) -> Iterable[tuple[str, str]]:
        """(field, value) of each value that identifies the row's record within the file."""
        return ()

    def write_chunk(self, rows: list[ParsedRow]) -> None:
        raise NotImplementedError

    # The passes.
    def run(self) -> None:
        self.check()
        self.define_properties()
        self.write()

    def parse(self, record: Record) -> tuple[ParsedRow, bool]:
        """The row's good values, and whether every cell was good (problems go to the report)."""
        values = record.values
        ok = True
        if len(values) > self.width and any(v.strip() for v in values[self.width :]):
            self.report.add(
                record.line,
                "",
                _("the row has %(n)s values but the header names only %(m)s columns")
                % {"n": len(values), "m": self.width},
            )
            ok = False
        row = ParsedRow(record.line)
        count = len(values)
        for column in self.columns:
            index = column.index
            raw = values[index].strip() if index < count else ""
            if not raw:
                continue
            try:
                if column.kind == FIELD:
                    row.fields[column.target] = self.fields[column.target].parse(raw)
                elif column.kind == STAGE_DATE:
                    row.stage_dates.append((column.target, parse_when(raw)))
                elif column.type:
                    row.properties[column.target] = coerce(raw, column.type, column.choices)
                else:
                    row.properties[column.target] = raw  # typed once the whole file is read
            except ValueError as error:
                self.report.add(record.line, column.header, str(error))
                ok = False
        for index in self.unnamed:
            if index < count and values[index].strip():
                self.report.add(
                    record.line,
                    _("column %s") % (index + 1),
                    _("the cell holds a value but its column has no name in the header"),
                )
                ok = False
        return row, ok

    def check(self) -> None:
        """First pass: every cell, duplicate keys within the file, and the inferred types."""
        to_infer = {
            c.index: set(_INFERABLE) for c in self.columns if c.kind == PROPERTY and not c.type
        }
        filled: set[int] = set()  # columns with at least one value
        seen: dict[tuple[str, str], int] = {}
        reported: set[tuple[str, str]] = set()
        rows = 0
        with progress_bar(
            self.options.progress,
            total=self.source.size,
            unit="B",
            unit_scale=True,
            desc=_("Checking %s") % self.source.path.name,
        ) as bar:
            for record in self.source.records(bar if self.options.progress else None):
                rows += 1
                row, _ok = self.parse(record)
                for index, candidates in to_infer.items():
                    if index < len(record.values) and (raw := record.values[index].strip()):
                        filled.add(index)
                        if candidates:
                            _narrow(candidates, raw)
                # Keys count even on a row with other problems: fixing those must not reveal
                # a duplicate only then.
                for key, value in self.keys(row):
                    first = seen.setdefault((key, value), record.line)
                    if first != record.line:
                        header = self.headers.get(key, key)
                        problem = _("%(label)s %(value)s appears on line %(a)s and line %(b)s") % {
                            "label": self.key_labels.get(key, key),
                            "value": value,
                            "a": first,
                            "b": record.line,
                        }
                        if (key, value) not in reported:
                            reported.add((key, value))
                            self.report.add(first, header, problem)
                        self.report.add(record.line, header, problem)
        if rows == 0:
            raise ImportFileError(_("the file has a header row but no data rows"))
        self.result.rows = rows
        for column in list(self.columns):
            if column.index not in to_infer:
                continue
            if column.index not in filled:
                # Exports from other tools carry dozens of never-used columns: no property for them.
                self.columns.remove(column)
                self.result.notes.append(
                    _("column %r is empty in every row; no property was created for it")
                    % column.header
                )
                continue
            candidates = to_infer[column.index]
            column.type = next((t for t in _INFERABLE if t in candidates), PropertyType.TEXT)

    def define_properties(self) -> None:
        """Create the custom properties the file brings, with their types."""
        for column in self.columns:
            if column.kind != PROPERTY or column.declared:
                continue
            try:
                define_property(
                    self.object_type or "",
                    column.target,
                    column.type,
                    label=column.header,
                    actor=self.options.actor,
                )
            except ValidationFailed as failed:
                raise ImportFileError(
                    _("column %(name)r cannot become a custom property: %(why)s")
                    % {"name": column.header, "why": failed}
                ) from None
            column.declared = True
            self.result.properties[column.target] = column.type

    def write(self) -> None:
        """Second pass: the valid rows, a chunk at a time."""
        invalid = self.report.invalid_lines
        total = self.result.rows - len(invalid)
        with progress_bar(
            self.options.progress, total=total, unit=" rows", desc=_("Importing %s") % self.noun
        ) as bar:
            chunk: list[ParsedRow] = []
            for record in self.source.records():
                if record.line in invalid:
                    continue
                row, _ok = self.parse(record)  # valid: the first pass read the same bytes
                chunk.append(row)
                if len(chunk) >= WRITE_CHUNK:
                    self.write_chunk(chunk)
                    bar.update(len(chunk))
                    chunk = []
            if chunk:
                self.write_chunk(chunk)
                bar.update(len(chunk))


def _narrow(candidates: set[str], raw: str) -> None:
    """Drop the types ``raw`` does not fit from a column's candidate types."""
    for type_ in list(candidates):
        try:
            _TYPE_PARSERS[type_](raw)
        except PropertyValueError:
            candidates.discard(type_)


# -- companies looked up by name, domain or external id -----------------------------------------


class CompanyIndex:
    """Companies by external id, domain and name (case-insensitive), loaded a chunk at a time.

    Names are compared lower-cased in Python; SQLite's LOWER() folds ASCII only, so names are
    also looked up as written, which finds non-ASCII names stored with the same spelling.
    """

    def __init__(self) -> None:
        self.by_external_id: dict[str, list[Company]] = {}
        self.by_domain: dict[str, list[Company]] = {}
        self.by_name: dict[str, list[Company]] = {}
        self._loaded: set[tuple[str, str]] = set()

    def load(
        self,
        *,
        external_ids: Iterable[str] = (),
        domains: Iterable[str] = (),
        names: Iterable[str] = (),
    ) -> None:
        wanted_ids = sorted({v for v in external_ids if ("x", v) not in self._loaded})
        wanted_domains = sorted({v for v in domains if ("d", v) not in self._loaded})
        wanted_names = {v for v in names if ("n", v.lower()) not in self._loaded}
        lowered = sorted({v.lower() for v in wanted_names})
        query = Q(pk__in=[])
        if wanted_ids:
            query |= Q(external_id__in=wanted_ids)
        if wanted_domains:
            query |= Q(domain__in=wanted_domains)
        if wanted_names:
            query |= Q(lname__in=lowered) | Q(name__in=sorted(wanted_names))
        if wanted_ids or wanted_domains or wanted_names:
            for company in (
                Company.objects.annotate(lname=Lower("name")).filter(query).order_by("pk")
            ):
                self.add(company)
        self._loaded.update(("x", v) for v in wanted_ids)
        self._loaded.update(("d", v) for v in wanted_domains)
        self._loaded.update(("n", v) for v in lowered)

    def add(self, company: Company) -> None:
        for index, key in (
            (self.by_external_id, company.external_id),
            (self.by_domain, company.domain),
            (self.by_name, company.name.lower()),
        ):
            if key:
                found = index.setdefault(key, [])
                if company not in found:
                    found.append(company)

    def forget(self, company: Company, external_id: str | None, domain: str, name: str) -> None:
        """Drop a company's old keys before it changes them."""
        for index, key in (
            (self.by_external_id, external_id),
            (self.by_domain, domain),
            (self.by_name, name.lower()),
        ):
            if key and company in index.get(key, []):
                index[key].remove(company)


# -- contacts -----------------------------------------------------------------------------------


def _active_users() -> dict[str, int]:
    """Active users by lower-cased username and email: how an owner column names them."""
    users: dict[str, int] = {}
    rows = get_user_model().objects.filter(is_active=True).order_by("pk")
    for pk, _username, email in rows.values_list("pk", "username", "email"):
        if email:
            users.setdefault(email.lower(), pk)
    for pk, username, _email in rows.values_list("pk", "username", "email"):
        users[username.lower()] = pk  # a username wins over someone else's email
    return users


def owner_parser() -> Callable[[str], int]:
    users = _active_users()

    def parse(raw: str) -> int:
        pk = users.get(raw.lower())
        if pk is None:
            raise RowValueError(_("no active user has the username or email %r") % raw)
        return pk

    return parse


def _export_read_only(kind: str) -> list[str]:
    from embudo.crm.exporting import read_only_headers

    return read_only_headers(kind)


class ContactImport(TableImport):
    """Contacts, updated or created by external id or email; their company linked or created by
    domain or name; their lifecycle history rebuilt from stage-date columns."""

    object_type = ObjectType.CONTACT
    noun = "contacts"

    def field_specs(self) -> dict[str, FieldSpec]:
        length = lambda name: _max_length(Contact, name)  # noqa: E731 - a local shorthand
        return {
            spec.name: spec
            for spec in (
                FieldSpec("email", parse_email, ("e-mail", "email address", "mail", "correo")),
                FieldSpec("external_id", text(length("external_id")), ("externalid",)),
                FieldSpec(
                    "first_name", text(length("first_name")), ("first", "given name", "nombre")
                ),
                FieldSpec(
                    "last_name",
                    text(length("last_name")),
                    ("last", "surname", "family name", "apellido", "apellidos"),
                ),
                FieldSpec(
                    "phone",
                    text(length("phone")),
                    ("phone number", "telephone", "telefono"),
                ),
                FieldSpec(
                    "job_title", text(length("job_title")), ("title", "position", "cargo", "puesto")
                ),
                FieldSpec(
                    "company",
                    text(_max_length(Company, "name")),
                    ("company name", "organization", "organisation", "account name", "empresa"),
                ),
                FieldSpec(
                    "company_domain",
                    parse_domain,
                    ("company domain name", "company website", "website domain"),
                ),
                FieldSpec(
                    "owner",
                    owner_parser(),
                    ("contact owner", "lead owner", "owner username", "owner email"),
                ),
                FieldSpec(
                    "lifecycle_stage",
                    choice_parser(STAGE_NAMES, _("lifecycle stage")),
                    ("lifecycle", "etapa del ciclo de vida"),
                ),
                FieldSpec(
                    "lead_status",
                    choice_parser(LEAD_STATUS_NAMES, _("lead status")),
                    ("estado del lead",),
                ),
                FieldSpec(
                    "original_source", text(length("original_source")), ("lead source", "source")
                ),
                FieldSpec("original_medium", text(length("original_medium")), ("medium",)),
                FieldSpec("original_campaign", text(length("original_campaign")), ()),
                FieldSpec(
                    "created_at",
                    parse_when,
                    ("create date", "created", "created date", "date created"),
                ),
            )
        }

    def stage_of(self, key: str) -> str | None:
        return stage_of_date_column(key)

    def read_only_columns(self) -> Iterable[str]:
        return _export_read_only("contacts")

    key_labels = {"email": gettext_lazy("email"), "external_id": gettext_lazy("external id")}

    def keys(self, row: ParsedRow) -> Iterable[tuple[str, str]]:
        fields = row.fields
        if "email" in fields:
            yield "email", fields["email"]
        if "external_id" in fields:
            yield "external_id", fields["external_id"]

    def run(self) -> None:
        self.companies = CompanyIndex()
        self.result.counts.update(companies_created=0, transitions=0)
        # The contacts whose stage the import set, by stage: told once the import commits.
        self.moved: dict[str, set[int]] = defaultdict(set)
        super().run()
        for stage, ids in self.moved.items():
            contacts_moved(stage, ids)

    def write_chunk(self, rows: list[ParsedRow]) -> None:
        emails = [r.fields["email"] for r in rows if "email" in r.fields]
        external_ids = [r.fields["external_id"] for r in rows if "external_id" in r.fields]
        # Stored contacts as plain dicts (model instances cost more to build than to fetch),
        # one dict per contact however many keys found it.
        found: dict[int, dict[str, Any]] = {}
        by_email: dict[str, dict[str, Any]] = {}
        by_external_id: dict[str, dict[str, Any]] = {}
        if emails:
            for stored in Contact.objects.filter(email__in=emails).values(*_CONTACT_LOADED):
                by_email[stored["email"]] = found.setdefault(stored["id"], stored)
        if external_ids:
            query = Contact.objects.filter(external_id__in=external_ids).values(*_CONTACT_LOADED)
            for stored in query:
                by_external_id[stored["external_id"]] = found.setdefault(stored["id"], stored)
        company_ids = self._companies(rows)

        # Each row is matched to at most one stored contact, or will create one.
        matched: list[tuple[ParsedRow, dict[str, Any] | None]] = []
        for row in rows:
            email, external_id = row.fields.get("email"), row.fields.get("external_id")
            by_x = by_external_id.get(external_id) if external_id else None
            by_e = by_email.get(email) if email else None
            if by_x and by_e and by_x["id"] != by_e["id"]:
                self.report.add(
                    row.line,
                    self.headers.get("email", ""),
                    _(
                        "external id %(x)s belongs to contact %(a)s but email %(e)s to contact "
                        "%(b)s; merge them first or fix the row"
                    )
                    % {"x": external_id, "e": email, "a": by_x["id"], "b": by_e["id"]},
                )
                continue
            stored = by_x or by_e
            if stored and external_id and stored["external_id"] not in (None, external_id):
                self.report.add(
                    row.line,
                    self.headers.get("external_id", ""),
                    _("email %(e)s belongs to a contact whose external id is %(old)s, not %(x)s")
                    % {"e": email, "old": stored["external_id"], "x": external_id},
                )
                continue
            matched.append((row, stored))

        history = self._history([c["id"] for r, c in matched if c is not None and r.stage_dates])
        creates: list[tuple[dict[str, Any], list[tuple[str, str, dt.datetime]]]] = []
        updates: dict[int, dict[str, Any]] = {}
        changed_fields: set[str] = set()
        transitions: list[tuple[int, str, str, dt.datetime]] = []
        for row, stored in matched:
            values = self._values(row, company_ids)
            if stored is None:
                creates.append(self._new_contact(row, values))
                continue
            changed = self._apply(stored, row, values, history.get(stored["id"], []), transitions)
            if "lifecycle_stage" in changed:
                self.moved[stored["lifecycle_stage"]].add(stored["id"])
            if changed:
                stored["updated_at"] = self.now
                changed_fields.update(changed)
                updates[stored["id"]] = stored
            elif stored["id"] not in updates:
                self.result.unchanged += 1

        if creates:
            ids = insert_rows(
                Contact, _CONTACT_INSERTED, [[c[f] for f in _CONTACT_INSERTED] for c, _m in creates]
            )
            for contact_id, (contact, moves) in zip(ids, creates, strict=True):
                transitions.extend((contact_id, *move) for move in moves)
                self.moved[contact["lifecycle_stage"]].add(contact_id)
            self.result.changed_ids.extend(ids)
        if updates:
            fields = sorted(changed_fields | {"updated_at"})
            update_rows(
                Contact, fields, [(pk, [c[f] for f in fields]) for pk, c in updates.items()]
            )
            self.result.changed_ids.extend(updates)
        if transitions:
            actor = _user_id(self.options.actor)
            insert_rows(
                LifecycleTransition,
                ("contact_id", "from_stage", "to_stage", "changed_at", "cause", "actor_id", "note"),
                [(*move, TransitionCause.IMPORT, actor, "") for move in transitions],
                returning=False,
            )
        self.result.created += len(creates)
        self.result.updated += len(updates)
        self.result.counts["transitions"] += len(transitions)

    def _companies(self, rows: list[ParsedRow]) -> dict[int, int]:
        """The company id each row links to (by line), creating missing companies in bulk."""
        wanted = [r for r in rows if "company" in r.fields or "company_domain" in r.fields]
        if not wanted:
            return {}
        index = self.companies
        index.load(
            domains=[r.fields["company_domain"] for r in wanted if "company_domain" in r.fields],
            names=[r.fields["company"] for r in wanted if "company" in r.fields],
        )
        links: dict[int, int] = {}
        # Companies to create, by domain and by name, so two rows naming one new company
        # create it once.
        new = CompanyIndex()
        created: list[Company] = []
        waiting: list[tuple[int, Company]] = []
        for row in wanted:
            name, domain = row.fields.get("company", ""), row.fields.get("company_domain", "")
            found = (index.by_domain.get(domain) if domain else None) or (
                index.by_name.get(name.lower()) if name else None
            )
            if found:
                links[row.line] = found[0].pk
                continue
            pending = (new.by_domain.get(domain) if domain else None) or (
                new.by_name.get(name.lower()) if name else None
            )
            if pending:
                company = pending[0]
            else:
                company = Company(
                    name=name or domain, domain=domain, created_at=self.now, updated_at=self.now
                )
                new.add(company)
                created.append(company)
            waiting.append((row.line, company))
        if created:
            insert_companies(created)
            for company in created:
                index.add(company)
            self.result.counts["companies_created"] += len(created)
            for line, company in waiting:
                links[line] = company.pk
        return links

    def _history(self, contact_ids: list[int]) -> dict[int, list[tuple[dt.datetime, str]]]:
        history: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
        if contact_ids:
            rows = LifecycleTransition.objects.filter(contact_id__in=contact_ids)
            for contact_id, at, stage in rows.values_list("contact_id", "changed_at", "to_stage"):
                history[contact_id].append((at, stage))
        return history

    def _values(self, row: ParsedRow, company_ids: dict[int, int]) -> dict[str, Any]:
        values = {
            name: value
            for name, value in row.fields.items()
            if name not in {"company", "company_domain", "owner", "lifecycle_stage", "created_at"}
        }
        if row.line in company_ids:
            values["company_id"] = company_ids[row.line]
        if "owner" in row.fields:
            values["owner_id"] = row.fields["owner"]
        return values

    def _new_contact(
        self, row: ParsedRow, values: dict[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, str, dt.datetime]]]:
        """The new contact's columns, and its moves (from, to, when) in time order."""
        dated = sorted(row.stage_dates, key=lambda s: (s[1], _funnel_rank(s[0])))
        created_at = row.fields.get("created_at") or (dated[0][1] if dated else self.now)
        target = row.fields.get("lifecycle_stage") or (
            dated[-1][0] if dated else LifecycleStage.SUBSCRIBER
        )
        moves: list[tuple[str, str, dt.datetime]] = []
        stage = ""
        for to_stage, at in dated:
            if to_stage != stage:
                moves.append((stage, to_stage, at))
                stage = to_stage
        if target != stage:
            moves.append((stage, target, self.now if moves else created_at))
        contact = {
            **_CONTACT_DEFAULTS,
            **values,
            "properties": row.properties,
            "lifecycle_stage": target,
            "lifecycle_stage_changed_at": moves[-1][2],
            "created_at": created_at,
            "updated_at": self.now,
        }
        return contact, moves

    def _apply(
        self,
        contact: dict[str, Any],
        row: ParsedRow,
        values: dict[str, Any],
        history: list[tuple[dt.datetime, str]],
        transitions: list[tuple[int, str, str, dt.datetime]],
    ) -> set[str]:
        """Change the stored ``contact`` to match the row; the names of the fields that changed."""
        changed: set[str] = set()
        for name, value in values.items():
            if contact[name] != value:
                contact[name] = value
                changed.add(name)
        if row.properties:
            merged = {**contact["properties"], **row.properties}
            if merged != contact["properties"]:
                contact["properties"] = merged
                changed.add("properties")
        # Dated stages the history lacks join it in time order; then the contact moves to the
        # stage the row names, or to where the merged history ends.
        pk = contact["id"]
        known = set(history)
        timeline = sorted(history, key=lambda h: (h[0], _funnel_rank(h[1])))
        for stage, at in sorted(row.stage_dates, key=lambda s: (s[1], _funnel_rank(s[0]))):
            if (at, stage) in known:
                continue
            before = [h for h in timeline if (h[0], _funnel_rank(h[1])) < (at, _funnel_rank(stage))]
            transitions.append((pk, before[-1][1] if before else "", stage, at))
            timeline.insert(len(before), (at, stage))
        current, changed_at = contact["lifecycle_stage"], contact["lifecycle_stage_changed_at"]
        end_stage, end_at = current, changed_at
        if timeline and timeline[-1][0] > changed_at:
            end_at, end_stage = timeline[-1]
        target = row.fields.get("lifecycle_stage") or end_stage
        if target != end_stage:
            transitions.append((pk, end_stage, target, self.now))
            end_at = self.now
        if target != current:
            contact["lifecycle_stage"] = target
            contact["lifecycle_stage_changed_at"] = end_at
            changed.update({"lifecycle_stage", "lifecycle_stage_changed_at"})
        return changed


# The contact columns an import reads and writes are the ones the contact actions accept.
_CONTACT_FIELDS = CONTACT_FIELDS
_CONTACT_DEFAULTS: dict[str, Any] = {
    name: None if name in {"email", "external_id", "company_id", "owner_id"} else ""
    for name in _CONTACT_FIELDS
}
_CONTACT_LOADED = (
    "id",
    *_CONTACT_FIELDS,
    "properties",
    "lifecycle_stage",
    "lifecycle_stage_changed_at",
)
_CONTACT_INSERTED = (
    *_CONTACT_FIELDS,
    "properties",
    "lifecycle_stage",
    "lifecycle_stage_changed_at",
    "created_at",
    "updated_at",
)


def _user_id(actor: Any) -> int | None:
    return actor.pk if getattr(actor, "is_authenticated", False) else None


_COMPANY_INSERTED = (
    "name",
    "domain",
    "external_id",
    "industry",
    "employees",
    "country",
    "city",
    "owner_id",
    "properties",
    "created_at",
    "updated_at",
)


def insert_companies(companies: Sequence[Company]) -> None:
    """Insert new Company instances, setting their ids."""
    ids = insert_rows(
        Company, _COMPANY_INSERTED, [[getattr(c, f) for f in _COMPANY_INSERTED] for c in companies]
    )
    for company, pk in zip(companies, ids, strict=True):
        company.pk = pk


# -- companies ----------------------------------------------------------------------------------


def parse_employees(raw: str) -> int:
    try:
        value = parse_number(raw)
    except PropertyValueError:
        value = -1
    if not isinstance(value, int) or not 0 <= value <= 2_147_483_647:
        raise RowValueError(_("%r is not a whole number of employees") % raw)
    return value


class CompanyImport(TableImport):
    """Companies, updated or created by external id, else domain, else name."""

    object_type = ObjectType.COMPANY
    noun = "companies"

    def field_specs(self) -> dict[str, FieldSpec]:
        length = lambda name: _max_length(Company, name)  # noqa: E731 - a local shorthand
        return {
            spec.name: spec
            for spec in (
                FieldSpec(
                    "name",
                    text(length("name")),
                    ("company", "company name", "organization", "organisation", "account name"),
                ),
                FieldSpec(
                    "domain", parse_domain, ("company domain", "company domain name", "website")
                ),
                FieldSpec("external_id", text(length("external_id")), ("externalid",)),
                FieldSpec("industry", text(length("industry")), ("sector", "industria")),
                FieldSpec(
                    "employees",
                    parse_employees,
                    ("number of employees", "employee count", "size", "headcount", "empleados"),
                ),
                FieldSpec("country", text(length("country")), ("country region", "pais")),
                FieldSpec("city", text(length("city")), ("town", "ciudad")),
                FieldSpec("owner", owner_parser(), ("company owner", "account owner")),
                FieldSpec("created_at", parse_when, ("create date", "created", "created date")),
            )
        }

    def read_only_columns(self) -> Iterable[str]:
        return _export_read_only("companies")

    key_labels = {
        "external_id": gettext_lazy("external id"),
        "domain": gettext_lazy("domain"),
        "name": gettext_lazy("company name"),
    }

    def keys(self, row: ParsedRow) -> Iterable[tuple[str, str]]:
        if external_id := row.fields.get("external_id"):
            yield "external_id", external_id
        elif domain := row.fields.get("domain"):
            yield "domain", domain
        elif name := row.fields.get("name"):
            yield "name", name.lower()

    def run(self) -> None:
        self.index = CompanyIndex()
        super().run()

    def write_chunk(self, rows: list[ParsedRow]) -> None:
        index = self.index
        index.load(
            external_ids=[r.fields["external_id"] for r in rows if "external_id" in r.fields],
            domains=[r.fields["domain"] for r in rows if "domain" in r.fields],
            names=[r.fields["name"] for r in rows if "name" in r.fields],
        )
        creates: list[Company] = []
        updates: dict[int, Company] = {}
        changed_fields: set[str] = set()
        for row in rows:
            ok, company = self._match(row)
            if not ok:
                continue
            values = {k: v for k, v in row.fields.items() if k not in {"owner", "created_at"}}
            if "owner" in row.fields:
                values["owner_id"] = row.fields["owner"]
            if company is None:
                if not values.get("name"):
                    self.report.add(
                        row.line,
                        self.headers.get("name") or "name",
                        _("no company matches this row, and a new company needs a name"),
                    )
                    continue
                company = Company(
                    **values,
                    properties=row.properties,
                    created_at=row.fields.get("created_at") or self.now,
                    updated_at=self.now,
                )
                creates.append(company)
                index.add(company)
                continue
            old_keys = (company.external_id, company.domain, company.name)
            changed = {name for name, value in values.items() if getattr(company, name) != value}
            for name in changed:
                setattr(company, name, values[name])
            if row.properties:
                merged = {**company.properties, **row.properties}
                if merged != company.properties:
                    company.properties = merged
                    changed.add("properties")
            if changed:
                index.forget(company, *old_keys)
                index.add(company)
                company.updated_at = self.now
                changed_fields.update(changed)
                updates[company.pk] = company
            elif company.pk not in updates:
                self.result.unchanged += 1
        if creates:
            insert_companies(creates)
            self.result.changed_ids.extend(c.pk for c in creates)
        if updates:
            fields = sorted(changed_fields | {"updated_at"})
            update_rows(
                Company,
                fields,
                [(pk, [getattr(c, f) for f in fields]) for pk, c in updates.items()],
            )
            self.result.changed_ids.extend(updates)
        self.result.created += len(creates)
        self.result.updated += len(updates)

    def _match(self, row: ParsedRow) -> tuple[bool, Company | None]:
        """(False, None) when the row is wrong (reported); else the stored company it updates,
        or None to create one."""
        external_id = row.fields.get("external_id")
        domain = row.fields.get("domain")
        name = row.fields.get("name")
        candidates: list[Company] = []
        how, column = "", ""
        if external_id and (found := self.index.by_external_id.get(external_id)):
            return True, found[0]
        if domain and (found := self.index.by_domain.get(domain)):
            candidates, how, column = found, _("the domain %s") % domain, "domain"
        elif name and not domain and (found := self.index.by_name.get(name.lower())):
            candidates, how, column = found, _("the name %r") % name, "name"
        if not candidates:
            return True, None
        if len(candidates) > 1:
            self.report.add(
                row.line,
                self.headers.get(column, ""),
                _(
                    "%(n)s companies have %(how)s; add an external_id or domain column to say "
                    "which one this row is"
                )
                % {"n": len(candidates), "how": how},
            )
            return False, None
        company = candidates[0]
        if external_id and company.external_id not in (None, external_id):
            self.report.add(
                row.line,
                self.headers.get("external_id", ""),
                _("the company with %(how)s has external id %(old)s, not %(new)s")
                % {"how": how, "old": company.external_id, "new": external_id},
            )
            return False, None
        if company.pk is None:
            # Created earlier in this same chunk; the file's duplicate check allows it only when
            # the keys differ (say a new external id with a domain already used above).
            self.report.add(
                row.line,
                self.headers.get(column, ""),
                _("another row of this file already creates the company with %s") % how,
            )
            return False, None
        return True, company


def _run_table(cls: type[TableImport]) -> Callable[..., None]:
    def run(
        source: CsvSource, options: ImportOptions, result: ImportResult, report: ErrorReport
    ) -> None:
        cls(source, options, result, report).run()

    return run


register_importer(
    Importer(
        "contacts",
        _run_table(ContactImport),
        gettext_lazy("contacts, with their company, owner and lifecycle history"),
    )
)
register_importer(Importer("companies", _run_table(CompanyImport), gettext_lazy("companies")))
