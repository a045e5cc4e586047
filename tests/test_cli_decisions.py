"""The decisions CSV the operator fills in (`uncertain --csv`, `resolve --from-csv`): what it
holds, and that a mistake in it is named by its row, with exit 2 and nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ledger import Ledger, Target
from pipeline.model import Decision, UserError
from pipeline.report.decisions import read_decisions, write_decisions_template
from pipeline.settings import key_fingerprint
from tests.test_cli_errors import kayse_etl

KEY = "k-123456"
BASE_URL = "http://127.0.0.1:9/v1"


def ledger_with_an_uncertain_client(path: Path) -> None:
    target = Target(BASE_URL, key_fingerprint(KEY))
    with Ledger.open(path) as ledger:
        run_id = ledger.start_run(target, "load", {}, 1)
        batch = ledger.open_batch(target, run_id, "client", ["import:C-1"])
        ledger.close_batch(target, batch, "client", {}, [], uncertain=["import:C-1"])


def test_the_template_round_trips_and_blank_rows_stay_uncertain(tmp_path: Path) -> None:
    ledger = tmp_path / "l.sqlite"
    ledger_with_an_uncertain_client(ledger)
    template = tmp_path / "decisions.csv"
    listed = kayse_etl("uncertain", "--ledger", str(ledger), "--csv", str(template))
    assert listed.returncode == 0, listed.stderr
    assert "import:C-1" in listed.stdout
    lines = template.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "kind,key,run,batch,kayse_id"
    assert lines[1].startswith("client,import:C-1,") and lines[1].endswith(",")
    assert read_decisions(template) == []  # nothing filled in: nothing decided
    template.write_text(lines[0] + "\n" + lines[1] + "81234\n", encoding="utf-8")
    assert read_decisions(template) == [Decision("client", "import:C-1", 81234)]
    done = kayse_etl("resolve", "--ledger", str(ledger), "--from-csv", str(template), key=KEY)
    assert done.returncode == 0, done.stderr
    assert "client import:C-1: recorded as Kayse id 81234" in done.stdout
    with Ledger.open(ledger) as opened:
        assert opened.uncertain() == []


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("client,import:C-1,1,1,maybe", "row 2: kayse_id must be a number or the word recreate"),
        ("thing,import:C-1,1,1,7", "row 2: kind must be one of client, case, case_list, campaign"),
    ],
)
def test_a_bad_row_is_named_and_nothing_changes(tmp_path: Path, row: str, message: str) -> None:
    ledger = tmp_path / "l.sqlite"
    ledger_with_an_uncertain_client(ledger)
    decisions = tmp_path / "decisions.csv"
    decisions.write_text("kind,key,run,batch,kayse_id\n" + row + "\n", encoding="utf-8")
    done = kayse_etl("resolve", "--ledger", str(ledger), "--from-csv", str(decisions), key=KEY)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    with Ledger.open(ledger) as opened:
        assert [u.source_key for u in opened.uncertain()] == ["import:C-1"]


def test_recreate_is_a_decision_and_an_unreadable_file_a_user_error(tmp_path: Path) -> None:
    path = write_decisions_template([], tmp_path / "d.csv")
    path.write_text(path.read_text(encoding="utf-8") + "case,import:K-1,,,Recreate\n", encoding="utf-8")
    assert read_decisions(path) == [Decision("case", "import:K-1", None)]
    with pytest.raises(UserError, match="cannot read"):
        read_decisions(tmp_path / "missing.csv")
