"""Header mapping: where each column of a file goes — a built-in field (by its name or one of
its aliases, as other tools export it), a dated stage, a custom property, or nowhere — decided
once from the header, every problem reported together."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.utils.translation import gettext as _

from embudo.accounts.actors import Actor
from embudo.csvimport.report import ImportFileError
from embudo.csvimport.run import ImportOptions


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


class CustomProperties(Protocol):
    """The custom properties of the records an import writes: where a column that names no
    built-in field goes. The app that owns the records says which properties exist, which names
    they cannot take, which types a column may be inferred as, and how a value is typed and a
    new property defined; the engine reads the file and checks it."""

    # The types a column's values may be inferred as, narrowest first.
    inferable: tuple[str, ...]
    # The type of a column whose values no inferable type fits.
    fallback: str
    # The types ``--type`` may give a column.
    overridable: tuple[str, ...]

    def name(self, header: str) -> str:
        """The property a column header becomes ("" when it holds nothing to name one with)."""
        ...

    def declared(self) -> dict[str, tuple[str, list[str]]]:
        """The properties that exist: name → (type, choices)."""
        ...

    def reserved(self) -> set[str]:
        """The names a property cannot take (the records' own fields)."""
        ...

    def fits(self, type_: str, raw: str) -> bool:
        """Whether ``raw`` is a value of ``type_`` (one of ``inferable``)."""
        ...

    def coerce(self, raw: str, type_: str, choices: list[str]) -> Any:
        """The stored value of ``raw`` for a property of ``type_``; a ValueError says why not."""
        ...

    def define(self, name: str, type_: str, *, label: str, actor: Actor) -> None:
        """Create the property; ValidationFailed says why not."""
        ...


def map_columns(
    header: Sequence[str],
    *,
    fields: Mapping[str, FieldSpec],
    options: ImportOptions,
    properties: CustomProperties | None,
    stage_of: Callable[[str], str | None] = lambda key: None,
    read_only: Iterable[str] = (),
) -> tuple[list[Column], list[str]]:
    """Decide where each column goes; returns the columns and notes on those left out.

    Order of precedence: ``--map``, ``--id-column``, a built-in field by name or alias, a stage
    date (``became_mql_at``), a column Embudo computes itself (skipped), and otherwise one of the
    ``properties`` (without them, an error). Every problem found is reported at once.
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
    existing = properties.declared() if properties is not None else {}
    builtin = properties.reserved() if properties is not None else set()

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
        elif target.startswith("property:") and properties is not None:
            chosen[mapped] = (PROPERTY, properties.name(target.removeprefix("property:")))
        elif properties is not None and properties.name(target) in existing:
            chosen[mapped] = (PROPERTY, properties.name(target))
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
        elif properties is None:
            problems.append(_("column %r is not a field this kind of record has") % name)
            continue
        else:
            kind, target = PROPERTY, properties.name(name)
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
            column.type, column.choices = existing[target]
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
        overridable = properties.overridable if properties is not None else ()
        if properties is not None and type_ not in overridable:
            problems.append(
                _("--type %(source)r=%(type)r: the type must be one of %(types)s")
                % {"source": source, "type": type_, "types": ", ".join(overridable)}
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
