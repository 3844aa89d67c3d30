"""atomlens: trustworthy numbers from atomic-resolution electron microscopy.

Subpackages
-----------
physics
    Forward models with no learning: electron wavelength, aberrations, probes, specimens,
    Ronchigrams, detector noise.
io
    Reading microscope files (through rosettasciio) with their calibration, and atomic writers
    for TIFF, HDF5, CSV and JSON.
cli
    The ``atomlens`` command.

Conventions: lengths in Angstrom, angles in mrad at the user surface (radians inside formulas),
energies in eV, aberration coefficients in Angstrom with angles in radians, named as abTEM names
them (C10, C12, phi12, ...). Images are float32 arrays indexed (row, column) = (y, x).
"""

__version__ = "0.1.0.dev0"
