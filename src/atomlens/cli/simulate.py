"""``atomlens simulate KIND``: the simulators behind every model."""

from __future__ import annotations

import argparse

from atomlens.cli import images, ronchigram


def add_parser(commands: argparse._SubParsersAction) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="simulate Ronchigrams, STEM / HRTEM images, image series and datasets",
        description=(
            "Simulate microscope data with the atomlens physics models. Every output comes with "
            "its ground truth and a JSON sidecar of the parameters (units in the names)."
        ),
    )
    kinds = simulate.add_subparsers(dest="kind", metavar="KIND", required=True)
    ronchigram.add_parser(kinds)
    images.add_parsers(kinds)
