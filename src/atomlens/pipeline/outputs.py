"""A run's folder: its tables, figures, summary and one self-contained HTML report.

:func:`output_names` says before any work which files a run of an image or a series writes (so the
command can refuse to overwrite them), and :func:`write_run` writes them all or none
(``atomlens.io.atomic_outputs``). Every figure is a PNG in the folder and is also embedded in
``report.html``, which therefore opens on its own, anywhere.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from atomlens import __version__
from atomlens.pipeline.run import RunResult
from atomlens.report import html as page

__all__ = ["output_names", "report_html", "write_run"]

#: Files of every run.
COMMON = ("atoms.csv", "overlay.png", "summary.json", "report.html")
#: Files of an image's run (the analysis of a series' first frame writes the same).
ANALYSIS = ("columns.csv", "vacancies.csv", "bonds.csv", "maps.png", "strain_gpa.png")
#: Files of a restored run.
RESTORED = ("restored.tif", "restored.png")
#: Files of a series' run.
SERIES = ("tracks.csv", "features.csv", "msd.csv", "events.csv", "trajectories.png",
          "msd.png", "events.png", "movie.gif")  # fmt: skip


def output_names(kind: str, restored: bool) -> list[str]:
    """The files a run writes, before any work (the analysis files are written when it ran)."""
    names = list(COMMON) + list(ANALYSIS) + list(RESTORED) * restored
    return names + list(SERIES) * (kind == "series")


def write_run(
    result: RunResult, folder: str | Path, *, overwrite: bool = False, command: str = ""
) -> list[Path]:
    """Write a run's tables, figures, ``summary.json`` and ``report.html`` into ``folder``.

    All files are written together or none (a failure leaves ``folder`` as it was).

    Parameters
    ----------
    result : RunResult
    folder : str or Path
        Created when missing.
    overwrite : bool
        Replace files of an earlier run (and remove those of its files this run does not
        write); otherwise an existing one raises ``FileExistsError``.
    command : str
        The command line, recorded in the report.

    Returns
    -------
    list of Path
        The files written.
    """
    from atomlens.io import atomic_outputs, write_json, write_tiff

    folder = Path(folder)
    writers = _writers(result)
    targets = [folder / name for name in writers]
    figures: dict[str, bytes] = {}
    earlier_run = (folder / "summary.json").is_file()
    with (
        atomic_outputs(targets, overwrite=overwrite, create_folders=True) as out,
        _TableWriter() as tables,
    ):
        for name, make in writers.items():
            path = out.path(folder / name)
            if name.endswith(".csv"):
                tables.write(path, make())
            elif name.endswith((".png", ".gif")):
                figures[name] = make()
                path.write_bytes(figures[name])
            elif name == "restored.tif":
                write_tiff(path, result.restored, pixel_size=result.pixel_size, overwrite=True)
            elif name == "summary.json":
                write_json(path, result.summary(), overwrite=True)
        text = report_html(result, figures, command=command)
        out.path(folder / "report.html").write_text(text, encoding="utf-8")
        tables.finish()
    # files of an earlier run that this one did not make would mislead; only a folder an earlier
    # run wrote (its summary.json) is cleaned, so a file of the same name a user put in another
    # folder is never removed
    if overwrite and earlier_run:
        for name in set(output_names("series", True)) - set(writers):
            (folder / name).unlink(missing_ok=True)
    return targets


#: Tables with more rows than this are written by helper processes while the figures are
#: drawn: pandas formats well under a million rows of floats per second (the atoms and tracks
#: of 100 frames of 3700 columns took 12 s of a run's 21 s of writing; 14-15 s in all with
#: two helpers on 2 cores, 17-18 s with one), and formatting holds the GIL, so threads would
#: not run beside the figures.
LARGE_TABLE = 100_000
#: The most helper processes for the large tables (never more than the cores).
HELPERS = 2


class _TableWriter:
    """Writes CSV tables: large ones in helper processes, the others at once.

    ``finish`` waits for the helpers and raises their first error; helpers that cannot start
    (a ``__main__`` that cannot be imported again, as ``python -`` has) leave the tables to be
    written here. Leaving the ``with`` block stops them (on an error the files they were
    writing are then discarded with the rest of the run's).
    """

    def __init__(self) -> None:
        self.pool = None
        self.pending: list = []

    def __enter__(self) -> _TableWriter:
        return self

    def write(self, path: Path, table: pd.DataFrame) -> None:
        from atomlens.io import write_csv

        if len(table) <= LARGE_TABLE:
            write_csv(path, table, overwrite=True)
            return
        if self.pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: no fork of a process that may hold threads (BLAS, torch)
            context = multiprocessing.get_context("spawn")
            helpers = max(1, min(HELPERS, os.cpu_count() or 1))
            self.pool = ProcessPoolExecutor(helpers, mp_context=context)
        self.pending.append((self._submit(write_csv, path, table), path, table))

    def _submit(self, write_csv: Callable, path: Path, table: pd.DataFrame):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.pool.submit(write_csv, path, table, overwrite=True)
        except BrokenProcessPool:
            return None

    def finish(self) -> None:
        from concurrent.futures.process import BrokenProcessPool

        from atomlens.io import write_csv

        for future, path, table in self.pending:
            try:
                if future is not None:
                    future.result()
                    continue
            except BrokenProcessPool:
                pass
            write_csv(path, table, overwrite=True)

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _writers(result: RunResult) -> dict[str, Callable[[], object]]:
    """Each file of this run and what makes its content (report.html last)."""
    from atomlens.report import series as series_figures

    first = result.data if result.kind == "image" else result.data[0]
    writers: dict[str, Callable[[], object]] = {
        "atoms.csv": lambda: result.columns,
        "overlay.png": lambda: _overlay(first, result),
        "summary.json": lambda: None,
    }
    if result.restored is not None:
        writers["restored.tif"] = lambda: None
        writers["restored.png"] = lambda: _panels(result)
    if result.analysis is not None:
        analysis = result.analysis
        writers |= {
            "columns.csv": lambda: analysis.columns,
            "vacancies.csv": lambda: analysis.vacancies,
            "bonds.csv": lambda: analysis.bonds,
            "maps.png": lambda: _maps(first, result),
        }
    if result.strain is not None:
        writers["strain_gpa.png"] = lambda: _strain(result)
    if result.tracks is not None:
        writers |= {
            "tracks.csv": lambda: result.tracks,
            "features.csv": lambda: result.features,
            "msd.csv": lambda: result.msd,
            "events.csv": lambda: result.events,
            "trajectories.png": lambda: _trajectories(first, result),
            "msd.png": lambda: page.figure_png(
                series_figures.msd_figure(result.msd, result.diffusion), 110
            ),
            "events.png": lambda: page.figure_png(
                series_figures.event_timeline(result.events, result.frames), 110
            ),
            "movie.gif": lambda: series_figures.movie_gif(result.data, result.tracks),
        }
    writers["report.html"] = lambda: None
    return writers


def _trajectories(image: np.ndarray, result: RunResult) -> bytes:
    """Drift-corrected trajectories over the first frame; movers beyond 0.3 column spacings."""
    from atomlens.report.series import trajectory_figure
    from atomlens.track import drift_corrected

    spacing = result.tracks.attrs.get("spacing_px") or 3.0
    fig = trajectory_figure(
        image, drift_corrected(result.tracks), result.pixel_size, still_within=0.3 * spacing
    )
    return page.figure_png(fig, 110)


def _overlay(image: np.ndarray, result: RunResult) -> bytes:
    from matplotlib.figure import Figure

    from atomlens.report import plot_overlay

    columns = result.columns
    if result.kind == "series" and len(columns):
        columns = columns[columns["frame"] == 0]
    atoms = columns.assign(species=columns["class"]) if "class" in columns else columns
    fig = Figure(figsize=(6, 6))
    title = f"{len(atoms)} columns" + (" (frame 0)" if result.kind == "series" else "")
    plot_overlay(fig.subplots(), image, atoms, result.pixel_size, title=title, marker_size=10)
    fig.tight_layout()
    return page.figure_png(fig, 110)


def _panels(result: RunResult) -> bytes:
    from matplotlib.figure import Figure

    from atomlens.report import plot_overlay

    raw, restored = result.data, result.restored
    if result.kind == "series":
        raw, restored = raw[0], restored[0]
    fig = Figure(figsize=(9, 4.7))
    for ax, image, title in zip(
        fig.subplots(1, 2), (raw, restored), ("input", "restored"), strict=True
    ):
        plot_overlay(ax, image, None, result.pixel_size, title=title)
    fig.tight_layout()
    return page.figure_png(fig, 110)


def _via_file(save: Callable[[Path], object]) -> bytes:
    """PNG bytes of a report function that only saves to a path."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figure.png"
        save(path)
        return path.read_bytes()


def _maps(image: np.ndarray, result: RunResult) -> bytes:
    from atomlens.report import save_analysis_maps

    analysis = result.analysis
    return _via_file(
        lambda path: save_analysis_maps(
            path, analysis.columns, analysis.vacancies, image, result.pixel_size
        )
    )


def _strain(result: RunResult) -> bytes:
    from atomlens.report import save_strain_images

    maps = result.strain
    return _via_file(lambda path: save_strain_images(path, vars(maps), maps.reliable))


def report_html(result: RunResult, figures: dict[str, bytes], *, command: str = "") -> str:
    """The self-contained HTML report of a run (figures embedded from ``figures``)."""
    sections = [page.section("Input", page.key_values(_input_facts(result)), _notes(result))]
    shown = _figure_blocks(figures)
    if "restored.png" in shown:
        sections.append(page.section("Restoration", shown["restored.png"]))
    sections.append(page.section("Columns", shown.get("overlay.png", ""), _columns_table(result)))
    if result.analysis is not None:
        sections.append(_analysis_section(result, shown))
    if result.tracks is not None:
        sections.append(_series_section(result, shown))
    sections.append(page.section("Timings", page.key_values(_timings(result))))
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    footer = f"atomlens {__version__}, {stamp}" + (f": {command}" if command else "")
    return page.document(f"atomlens run: {Path(result.source).name}", sections, footer)


#: Captions of the figures in the report.
CAPTIONS = {
    "restored.png": "The input and the restored image (shipped network for the modality).",
    "overlay.png": "Every column found, coloured by class, over the input.",
    "maps.png": "Displacements from the fitted lattice (arrows magnified), local strain "
    "exx, eyy, exy, rotation [degrees], and the defects.",
    "strain_gpa.png": "Strain and rotation by geometric phase analysis of the image (grey: no "
    "reliable lattice phase).",
    "trajectories.png": "Every trajectory (drift removed) over the first frame: blue stays within "
    "0.3 column spacings of where it started, red moves further.",
    "msd.png": "Mean squared displacement per trajectory (grey) and pooled over the moving "
    "trajectories, with the line fit 4Dt + c.",
    "events.png": "Recognised events per frame; marker size is the confidence.",
    "movie.gif": "The series with each frame's detections (red).",
}


def _figure_blocks(figures: dict[str, bytes]) -> dict[str, str]:
    return {
        name: page.picture(data, CAPTIONS.get(name, name), kind=name.rsplit(".", 1)[1], alt=name)
        for name, data in figures.items()
    }


def _input_facts(result: RunResult) -> dict[str, object]:
    facts: dict[str, object] = {
        "file": result.source,
        "kind": result.kind,
        "shape": " x ".join(str(n) for n in result.data.shape),
        "modality": result.modality,
        "pixel size": "not known (lengths in px)"
        if result.pixel_size is None
        else f"{result.pixel_size:.4g} Å/px ({result.pixel_size_source})",
    }
    if result.kind == "series":
        facts["frame time"] = "not given" if result.frame_time is None else f"{result.frame_time} s"
    settings = result.settings
    facts["steps"] = (
        f"restore {'on' if settings.get('restore') else 'off'}, locate "
        f"{settings.get('locate_method')} on the {settings.get('locate_on')} image"
    )
    return facts


def _notes(result: RunResult) -> list[str]:
    return [page.paragraph(note, note=True) for note in result.notes]


def _columns_table(result: RunResult) -> str:
    columns = result.columns
    attrs = columns.attrs
    spacing = attrs.get("spacing_px")
    source = attrs.get("spacing_source")
    facts = {
        "columns": len(columns),
        "column spacing": "–" if spacing is None else f"{spacing:.3g} px ({source})",
        "median position uncertainty": _median_sigma(columns),
    }
    if "class" in columns and len(columns):
        counts = columns["class"].value_counts()
        facts["classes"] = ", ".join(f"{k}: {v}" for k, v in counts.items())
    shown = columns.drop(columns=[c for c in ("width", "background") if c in columns])
    return page.key_values(facts) + page.table(shown, max_rows=10, caption="atoms.csv")


def _median_sigma(columns: pd.DataFrame) -> str:
    if not len(columns) or "sigma_y" not in columns:
        return "–"
    sigma = float(np.nanmedian(np.hypot(columns["sigma_y"], columns["sigma_x"])))
    scale = columns.attrs.get("pixel_size")
    return f"{sigma:.3g} px" + ("" if not scale else f" ({sigma * scale * 100:.3g} pm)")


def _analysis_section(result: RunResult, shown: dict[str, str]) -> str:
    summary = result.analysis.summary()
    facts = {
        "lattice |a|, |b|": f"{summary['a_px']:.4g}, {summary['b_px']:.4g} px"
        + (f" ({summary['a_A']:.4g}, {summary['b_A']:.4g} Å)" if "a_A" in summary else ""),
        "angle": f"{summary['angle_deg']:.2f}°",
        "sublattices": summary["sublattices"],
        "vacancies": summary["vacancies"],
        "columns off the lattice": summary["off_lattice"],
        "columns of unusual intensity": summary["unusual_intensity"],
        "coordination (interior, most common)": summary["coordination_expected"],
        "under- / over-coordinated": f"{summary['under_coordinated']} / "
        f"{summary['over_coordinated']}",
        "displacement RMS": f"{summary['displacement_rms_px']:.3g} px",
        "strain spread (std of exx, eyy, exy)": ", ".join(
            f"{summary['strain_std'][k]:.2g}" for k in ("exx", "eyy", "exy")
        ),
    }
    blocks = [page.key_values(facts), shown.get("maps.png", ""), shown.get("strain_gpa.png", "")]
    if len(result.analysis.vacancies):
        blocks.append(page.table(result.analysis.vacancies, caption="vacancies.csv"))
    return page.section("Lattice, strain and defects", blocks)


def _series_section(result: RunResult, shown: dict[str, str]) -> str:
    tracks, features = result.tracks, result.features
    facts: dict[str, object] = {
        "detections": len(tracks),
        "trajectories": tracks["particle"].nunique(),
        "frames": result.frames,
        "drift over the series": _drift(tracks),
        "search range": f"{tracks.attrs.get('search_range', float('nan')):.3g} px",
    }
    if result.diffusion is not None:
        d = result.diffusion
        facts["diffusion coefficient (movers)"] = (
            f"{d['D']:.3g} ± {d['D_err']:.2g} {d['unit']} ({d['trajectories']} trajectories)"
        )
    counts = result.events["kind"].value_counts() if len(result.events) else pd.Series(dtype=int)
    facts["events"] = ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"
    longest = features.sort_values("displacement", ascending=False)
    blocks = [
        page.key_values(facts),
        shown.get("movie.gif", ""),
        shown.get("trajectories.png", ""),
        shown.get("msd.png", ""),
        shown.get("events.png", ""),
        page.table(longest, max_rows=10, caption="features.csv, the trajectories that moved most"),
    ]
    if len(result.events):
        events = result.events.drop(columns=["y_from", "x_from", "y_to", "x_to"], errors="ignore")
        blocks.append(page.table(events, max_rows=15, caption="events.csv"))
    return page.section("Trajectories and events", blocks)


def _drift(tracks: pd.DataFrame) -> str:
    drift = np.asarray(tracks.attrs.get("drift", np.zeros((1, 2))))
    total = float(np.hypot(*(drift[-1] - drift[0]))) if len(drift) else 0.0
    return f"{total:.3g} px"


def _timings(result: RunResult) -> dict[str, str]:
    out = {step: f"{seconds:.2f} s" for step, seconds in result.timings.items()}
    out["total"] = f"{sum(result.timings.values()):.2f} s"
    return out
