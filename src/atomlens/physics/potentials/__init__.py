"""Atomic potentials and the specimens built from them.

Modules
-------
scattering
    Lobato & Van Dyck (2014) electron scattering factors ``scattering_factor`` [Å],
    ``atomic_number``, ``POTENTIAL_PER_SCATTERING_FACTOR`` [V Å^2]; the table is
    ``data/lobato2014.json``.
projection
    Projected potentials on periodic grids, ``projected_potential`` and the batched
    ``projected_potentials`` [V Å] (cloud-in-cell deposition, Fourier method).
specimens
    Specimens for Ronchigrams: ``Specimen`` (the protocol), ``AmorphousSpecimen`` (multislice),
    ``PhaseGrating``, ``CrystalSpecimen``, ``PotentialSpecimen``; ``AMORPHOUS_CARBON_DENSITY``
    [atoms / Å^3].
"""

from typing import TYPE_CHECKING

from atomlens._lazy import attach

if TYPE_CHECKING:
    from atomlens.physics.potentials.projection import projected_potential, projected_potentials
    from atomlens.physics.potentials.scattering import (
        POTENTIAL_PER_SCATTERING_FACTOR,
        atomic_number,
        scattering_factor,
    )
    from atomlens.physics.potentials.specimens import (
        AMORPHOUS_CARBON_DENSITY,
        AmorphousSpecimen,
        CrystalSpecimen,
        PhaseGrating,
        PotentialSpecimen,
        Specimen,
    )

__all__ = [
    "AMORPHOUS_CARBON_DENSITY",
    "POTENTIAL_PER_SCATTERING_FACTOR",
    "AmorphousSpecimen",
    "CrystalSpecimen",
    "PhaseGrating",
    "PotentialSpecimen",
    "Specimen",
    "atomic_number",
    "projected_potential",
    "projected_potentials",
    "scattering_factor",
]

__getattr__, __dir__ = attach(
    __name__,
    {
        "atomlens.physics.potentials.projection": (
            "projected_potential",
            "projected_potentials",
        ),
        "atomlens.physics.potentials.scattering": (
            "POTENTIAL_PER_SCATTERING_FACTOR",
            "atomic_number",
            "scattering_factor",
        ),
        "atomlens.physics.potentials.specimens": (
            "AMORPHOUS_CARBON_DENSITY",
            "AmorphousSpecimen",
            "CrystalSpecimen",
            "PhaseGrating",
            "PotentialSpecimen",
            "Specimen",
        ),
    },
)
