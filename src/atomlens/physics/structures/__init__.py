"""Atomic structures (ase ``Atoms``): materials, oriented fields, projected columns, defects.

Modules
-------
materials
    The library of crystals: ``material``, ``MATERIALS``, ``ZONE_AXES``, ``LAYERED``,
    ``MaterialLike``.
lattice
    ``orient`` (a zone axis along z), ``field`` (an image field), ``random_crop``, ``columns`` and
    ``column_labels`` (projected atom columns); ``Rng``.
defects
    ``vacancies``, ``substitute``, ``adatoms``, ``interstitial_columns``, ``grain_boundary``,
    ``surface_edge``.
random_structures
    ``amorphous_film``, ``nanoparticle_on_support``, ``random_structure`` (random training
    structures); ``DOPANTS``, ``ADATOMS``, ``NANOPARTICLE_METALS``.
"""

from typing import TYPE_CHECKING

from atomlens._lazy import attach

if TYPE_CHECKING:
    from atomlens.physics.structures.defects import (
        adatoms,
        grain_boundary,
        interstitial_columns,
        substitute,
        surface_edge,
        vacancies,
    )
    from atomlens.physics.structures.lattice import (
        Rng,
        column_labels,
        columns,
        field,
        orient,
        random_crop,
    )
    from atomlens.physics.structures.materials import (
        LAYERED,
        MATERIALS,
        ZONE_AXES,
        MaterialLike,
        material,
    )
    from atomlens.physics.structures.random_structures import (
        ADATOMS,
        DOPANTS,
        NANOPARTICLE_METALS,
        amorphous_film,
        nanoparticle_on_support,
        random_structure,
    )

__all__ = [
    "ADATOMS",
    "DOPANTS",
    "LAYERED",
    "MATERIALS",
    "NANOPARTICLE_METALS",
    "ZONE_AXES",
    "MaterialLike",
    "Rng",
    "adatoms",
    "amorphous_film",
    "column_labels",
    "columns",
    "field",
    "grain_boundary",
    "interstitial_columns",
    "material",
    "nanoparticle_on_support",
    "orient",
    "random_crop",
    "random_structure",
    "substitute",
    "surface_edge",
    "vacancies",
]

__getattr__, __dir__ = attach(
    __name__,
    {
        "atomlens.physics.structures.defects": (
            "adatoms",
            "grain_boundary",
            "interstitial_columns",
            "substitute",
            "surface_edge",
            "vacancies",
        ),
        "atomlens.physics.structures.lattice": (
            "Rng",
            "column_labels",
            "columns",
            "field",
            "orient",
            "random_crop",
        ),
        "atomlens.physics.structures.materials": (
            "LAYERED",
            "MATERIALS",
            "ZONE_AXES",
            "MaterialLike",
            "material",
        ),
        "atomlens.physics.structures.random_structures": (
            "ADATOMS",
            "DOPANTS",
            "NANOPARTICLE_METALS",
            "amorphous_film",
            "nanoparticle_on_support",
            "random_structure",
        ),
    },
)
