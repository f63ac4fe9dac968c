"""Predictive conversion on a real slice of the UCI Bank Marketing data, loaded through
`embudo import contacts`: an AUC floor without `duration`, and the leakage guard flagging it
when it is left in."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from embudo.crm.models import Contact
from embudo.predictive import actions

BANK = (
    Path(__file__).resolve().parents[2]
    / "shared/datasets/uci_bank_marketing/bank-additional-full.csv"
)
if not BANK.exists():
    BANK = Path("/work/shared/datasets/uci_bank_marketing/bank-additional-full.csv")

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not BANK.exists(), reason=f"the shared datasets are absent ({BANK})"),
]

SLICE = 5000


def bank_slice(folder: Path, rows: int = SLICE, seed: int = 3) -> Path:
    """A random slice of the bank file as Embudo imports it: an external id, the outcome as a
    lifecycle stage (customer for y=yes, disqualified for y=no), every other column as is."""
    with BANK.open(newline="") as source:
        reader = csv.reader(source, delimiter=";")
        header = next(reader)
        records = list(reader)
    picked = np.random.default_rng(seed).choice(len(records), size=rows, replace=False)
    target = header.index("y")
    path = folder / "bank.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["bank_id", "lifecycle_stage"]
            + [c.replace(".", "_") for i, c in enumerate(header) if i != target]
        )
        for n in sorted(picked.tolist()):
            row = records[n]
            stage = "customer" if row[target] == "yes" else "disqualified"
            writer.writerow([f"bank-{n}", stage] + [v for i, v in enumerate(row) if i != target])
    return path


@pytest.fixture
def bank(tmp_path: Path) -> None:
    call_command(
        "import",
        "contacts",
        str(bank_slice(tmp_path)),
        "--id-column",
        "bank_id",
        "-q",
        stdout=io.StringIO(),
    )
    assert Contact.objects.count() == SLICE


def test_bank_slice_without_duration_reaches_the_auc_floor(bank: None) -> None:
    out = io.StringIO()
    call_command(
        "score", "train", "--exclude", "duration", "--holdout", "0.3", "--seed", "1", stdout=out
    )
    model = actions.active_model()
    assert model is not None
    holdout = model.metrics["holdout"]
    assert holdout["contacts"] == pytest.approx(SLICE * 0.3, abs=2)
    # The published best on the full data is about 0.80; a 3,500-contact training slice is a
    # little weaker, so the floor is 0.75.
    assert holdout["auc"] >= 0.75, out.getvalue()
    assert "duration" not in [f["key"] for f in model.features]
    assert "lifecycle_stage" not in [f["key"] for f in model.features]
    assert model.metrics["leakage_flags"] == []


def test_leakage_guard_flags_duration_when_left_in(bank: None) -> None:
    out = io.StringIO()
    call_command("score", "train", "--holdout", "0.3", "--seed", "1", stdout=out)
    text = out.getvalue()
    assert "LEAKAGE GUARD" in text
    assert "! duration:" in text
    model = actions.active_model()
    assert model is not None
    assert [flag["field"] for flag in model.metrics["leakage_flags"]] == ["duration"]
