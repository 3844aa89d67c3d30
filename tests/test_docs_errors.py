"""docs/errors.md lists every parameter range exactly as the validation layer checks it."""

from __future__ import annotations

import re
from pathlib import Path

from atomlens.core.validation import PARAMETERS

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def test_the_range_table_is_the_one_the_code_checks():
    section = DOC.read_text().split("## Valid ranges")[1].split("\n## ")[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|$", section, re.MULTILINE)
    documented = {name: (meaning.strip(), text.strip()) for name, meaning, text in rows}
    checked = {name: (r.meaning, r.text()) for name, r in PARAMETERS.items()}
    assert documented == checked


def test_the_size_limits_quoted_are_the_ones_in_force(monkeypatch):
    from atomlens.core.validation import DEFAULT_MAX_ARRAY_GB, MAX_ATOMS
    from atomlens.io import DESCRIBE_VALUES_LIMIT

    text = DOC.read_text()
    assert f"| one array | {DEFAULT_MAX_ARRAY_GB:g} GiB;" in text
    assert f"| one specimen | {MAX_ATOMS:.0e} atoms".replace("e+0", "e") in text
    assert f"{DESCRIBE_VALUES_LIMIT >> 20} MiB of data" in text
