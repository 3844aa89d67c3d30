"""The real images of ../shared/data/real that the benchmarks run on, and what each shows.

One table for ``restore_real.py`` and ``locate_real.py``: file name -> (modality, pixel size
when the file has none [Å], description). The images are not part of atomlens (see that folder's
README); benchmarks skip a file that is missing.
"""

IMAGES = {
    "hrstem_example.ser": ("haadf", None, "HAADF-STEM, TIA SER"),
    "example_Se_implanted_MoS2.dm3": ("haadf", None, "Se-implanted MoS2, 60 kV ADF, DM3"),
    "SrTiO3_ADF_cropped.hdf5": ("haadf", None, "SrTiO3 ADF, HyperSpy"),
    "SrTiO3_ABF_cropped.hdf5": ("abf", None, "SrTiO3 ABF, HyperSpy"),
    # the PNG has no calibration: 0.089 Å from its Si {111} Fourier peak (docs/sampler_realism.md)
    "Si110_HAADF.png": ("haadf", 0.089, "Si [110] HAADF, PNG"),
}
