"""Writing a benchmark's results: the JSON record and the markdown table beside it."""

from __future__ import annotations

import json
from pathlib import Path


def write_results(output: Path, settings: dict, rows: list[dict], markdown: str) -> None:
    """``{"settings", "rows"}`` as JSON at ``output`` and ``markdown`` at ``output`` with the
    suffix ``.md`` (folders made as needed), then the markdown printed."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"settings": settings, "rows": rows}, indent=1, default=float))
    output.with_suffix(".md").write_text(markdown)
    print(markdown)
