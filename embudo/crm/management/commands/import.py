"""`embudo import KIND FILE`: contacts, companies, and the kinds other apps add, from CSV."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _

from embudo.commands import DataCommand
from embudo.csvimport.report import ImportFileError, write_errors_csv
from embudo.csvimport.run import ImportOptions, ImportResult, discover_importers, run_import

# Problems printed on the terminal; the --errors file always has them all.
SHOWN_ERRORS = 50


class Command(DataCommand):
    help = (
        "Import records from a CSV file. Columns are matched to fields by their header; other "
        "columns become typed custom properties. The whole file is imported in one transaction: "
        "if any row is invalid nothing is written (unless --skip-invalid)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        kinds = ", ".join(sorted(discover_importers()))
        parser.add_argument("kind", help=f"what the file holds: {kinds}")
        parser.add_argument("file", help="the CSV file")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar='"SOURCE COLUMN=FIELD"',
            help="send a column to a field (repeatable); FIELD may be property:NAME, or - to skip",
        )
        parser.add_argument(
            "--id-column", metavar="COLUMN", help="the column holding each record's external id"
        )
        parser.add_argument(
            "--type",
            action="append",
            default=[],
            dest="types",
            metavar='"COLUMN=TYPE"',
            help="the type of a new custom property (text, number, boolean, date) instead of "
            "the inferred one (repeatable)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="check the file and report, writing nothing"
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid rows even when others are invalid (they are reported)",
        )
        parser.add_argument(
            "--errors", metavar="FILE.csv", help="also write the row problems to this CSV file"
        )
        parser.add_argument(
            "--delimiter", help="the column separator, when guessing it from the header fails"
        )
        parser.add_argument("--encoding", help="the file's encoding, when detecting it fails")
        parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        delimiter = options["delimiter"]
        if delimiter in {"\\t", "tab", "TAB"}:
            delimiter = "\t"
        import_options = ImportOptions(
            mapping=_pairs(options["map"], "--map"),
            id_column=options["id_column"],
            types=_pairs(options["types"], "--type"),
            dry_run=options["dry_run"],
            skip_invalid=options["skip_invalid"],
            delimiter=delimiter,
            encoding=options["encoding"],
            progress=not options["quiet"] and sys.stderr.isatty(),
        )
        try:
            result = run_import(options["kind"], options["file"], import_options)
        except (ImportFileError, LookupError) as error:
            # LookupError: an --encoding Python does not know.
            raise CommandError(f"{options['file']}: {error}") from None

        for note in result.notes:
            self.stdout.write(_("note: %s") % note)
        if options["errors"]:
            _write_errors(result, options["errors"])
        if result.error_count:
            for problem in result.errors[:SHOWN_ERRORS]:
                self.stderr.write(str(problem))
            if result.error_count > SHOWN_ERRORS:
                more = result.error_count - SHOWN_ERRORS
                hint = (
                    _(" (all of them are in %s)") % options["errors"]
                    if options["errors"]
                    else _(" (use --errors FILE.csv to get them all)")
                )
                self.stderr.write(
                    _("… and %(n)s more problems%(hint)s") % {"n": more, "hint": hint}
                )
        self.stdout.write(_describe(result, options["skip_invalid"]))
        rows_with_errors = result.skipped
        previewed = result.dry_run and options["skip_invalid"]
        if result.error_count and not result.committed and not previewed:
            if result.dry_run:
                raise CommandError(
                    _("%(n)s of %(rows)s rows have problems (dry run: nothing was written)")
                    % {"n": rows_with_errors, "rows": result.rows}
                )
            raise CommandError(
                _(
                    "%(n)s of %(rows)s rows have problems, so nothing was imported; fix them, or "
                    "use --skip-invalid to import the other rows"
                )
                % {"n": rows_with_errors, "rows": result.rows}
            )


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        source, sep, target = value.rpartition("=")
        if not sep or not source.strip():
            raise CommandError(
                _('%(option)s %(value)r: write it as "COLUMN=VALUE"')
                % {"option": option, "value": value}
            )
        pairs[source.strip()] = target.strip()
    return pairs


def _write_errors(result: ImportResult, path: str) -> None:
    try:
        write_errors_csv(result.errors, path)
    except OSError as error:
        raise CommandError(_("cannot write the error report: %s") % error) from None


def _describe(result: ImportResult, skip_invalid: bool) -> str:
    numbers = {
        "rows": result.rows,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "skipped": result.skipped,
    }
    if result.committed:
        lines = [
            _(
                "Imported %(rows)s rows: %(created)s created, %(updated)s updated, "
                "%(unchanged)s unchanged, %(skipped)s invalid rows skipped."
            )
            % numbers
        ]
    elif result.dry_run and (not result.error_count or skip_invalid):
        lines = [
            _(
                "Dry run, nothing was written. %(rows)s rows would give: %(created)s created, "
                "%(updated)s updated, %(unchanged)s unchanged, %(skipped)s invalid rows skipped."
            )
            % numbers
        ]
    else:
        lines = [
            _(
                "Nothing was written. Of %(rows)s rows, %(skipped)s have problems; the others "
                "would give %(created)s created, %(updated)s updated, %(unchanged)s unchanged."
            )
            % numbers
        ]
    done = result.committed
    if result.properties:
        listed = ", ".join(f"{name} ({type_})" for name, type_ in result.properties.items())
        lines.append(
            (
                _("New custom properties: %s.")
                if done
                else _("New custom properties: %s (not created).")
            )
            % listed
        )
    if companies := result.counts.get("companies_created"):
        lines.append(
            (_("Companies created: %s.") if done else _("Companies to create: %s.")) % companies
        )
    if transitions := result.counts.get("transitions"):
        lines.append(
            (
                _("Lifecycle stage changes recorded: %s.")
                if done
                else _("Lifecycle stage changes to record: %s.")
            )
            % transitions
        )
    return "\n".join(lines)
