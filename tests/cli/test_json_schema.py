"""Every JSON document of the command carries ``schema_version``; docs/command-line.md lists its fields."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from manual_backprop.cli.command import main
from manual_backprop.compare.report import SCHEMA_VERSION

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "command-line.md").read_text()
SCHEMA = PAGE[PAGE.index("## JSON output"):]  # the page's last section
ZOO = Path(__file__).parents[1] / "zoo"

DOCUMENTS = {
    "gradient": ["--depth", "1", "--width", "3"],
    "directional": ["--depth", "1", "--width", "3", "--fd", "directional"],
    "taylor": ["--depth", "1", "--width", "3", "--fd", "taylor"],
    "derivative": ["--depth", "1", "--width", "3", "--derivative", "hvp"],
    "backward": ["--backward", f"{ZOO / 'passes.py'}:backward_pass"],
}
# Fields whose values are free-form (lists of numbers or sentences) or per-step detail: named as a group.
FREE = {"conventions", "notes", "diagnoses", "rates", "floors", "crossed", "used", "changes"}


def document(kind: str, capsys) -> dict:
    main(["check", "--json", *DOCUMENTS[kind]])
    return json.loads(capsys.readouterr().out)


def fields(value, path=()) -> set:
    """The field names of a JSON value, through nested objects and lists of objects."""
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            found.add(key)
            if key not in FREE:
                found |= fields(inner)
    elif isinstance(value, list):
        for item in value:
            found |= fields(item)
    return found


@pytest.mark.parametrize("kind", DOCUMENTS)
def test_every_document_has_the_schema_version(kind, capsys):
    data = document(kind, capsys)
    assert data["schema_version"] == SCHEMA_VERSION and data["command"] == "check" and data["ok"] is True
    assert isinstance(SCHEMA_VERSION, int)


@pytest.mark.parametrize("kind", DOCUMENTS)
def test_the_readme_describes_every_field(kind, capsys):
    described = set(re.findall(r"`([a-z_]+)`", SCHEMA))
    missing = fields(document(kind, capsys)) - described
    assert not missing, f"fields of the {kind} document not in docs/command-line.md: {sorted(missing)}"


def test_the_three_way_report_carries_the_version_too(capsys):
    assert document("gradient", capsys)["report"]["schema_version"] == SCHEMA_VERSION
