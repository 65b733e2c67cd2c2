"""Monthly city temperatures for 2.1-climate-forecast.

Sources, all under ``<data>/climate/``:

- the Kaggle "Climate Change: Earth Surface Temperature Data" files from
  Berkeley Earth: ``GlobalLandTemperaturesByMajorCity.csv`` (100 cities, 14 MB)
  or ``GlobalLandTemperaturesByCity.csv`` (3,448 cities, 500+ MB), each also
  accepted zipped (``.zip`` beside it, read member-wise). Columns ``dt,
  AverageTemperature, AverageTemperatureUncertainty, City, Country, Latitude,
  Longitude``; monthly, deg C. Per-city extracts named
  ``GlobalLandTemperatures..._<City>.csv`` with the same columns work too.
- ECMWF ERA-Interim daily 2 m temperature at noon for one city,
  ``era_interim_t2m_noon_<city>.csv`` (value column ``Value at MetPoint`` in
  kelvin): averaged to monthly means in deg C. Brussels is not among the
  Berkeley "major" cities; this is the Brussels series when the full by-city
  file is not at hand.

The files are streamed line by line (a cheap substring test first, the CSV
parser only on lines that can match), so the 500 MB file is never in memory.
``import_climate(path)`` copies a user's download into the data folder.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
import shutil
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from . import DataCorrupt, DataMissing, DataSet, data_root, register, require

FOLDER = "climate"
BERKELEY_FILES = ("GlobalLandTemperaturesByCity", "GlobalLandTemperaturesByMajorCity")
BERKELEY_COLUMNS = ("dt", "AverageTemperature", "AverageTemperatureUncertainty", "City", "Country")
ERA_PREFIX = "era_interim_t2m_noon_"
ERA_VALUE = "Value at MetPoint"
IMPORT_HINT = ("download GlobalLandTemperaturesByMajorCity.csv (or ...ByCity.csv) from Kaggle's \"Climate Change: "
               "Earth Surface Temperature Data\", then: labbench data import climate PATH (csv or zip)")


# ------------------------------------------------------------------ files
def climate_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / FOLDER


def city_slug(city: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", city.lower()).strip("_")


def berkeley_sources(root: Path | None = None) -> list[Path]:
    """Berkeley Earth files present: per-city extracts, the major-city file,
    the full by-city file (csv before zip)."""
    folder = climate_dir(root)
    out = sorted(folder.glob("GlobalLandTemperaturesBy*City_*.csv"))
    for stem in ("GlobalLandTemperaturesByMajorCity", "GlobalLandTemperaturesByCity"):
        for suffix in (".csv", ".zip"):
            if (folder / f"{stem}{suffix}").exists():
                out.append(folder / f"{stem}{suffix}")
                break
    return out


def era_source(city: str, root: Path | None = None) -> Path:
    return climate_dir(root) / f"{ERA_PREFIX}{city_slug(city)}.csv"


@contextmanager
def open_text(path: Path) -> Iterator[io.TextIOBase]:
    """A text stream of a CSV, or of the CSV member of a zip (read in chunks)."""
    path = Path(path)
    if path.suffix.lower() == ".zip":
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise DataCorrupt(f"{path}: not a readable zip file") from None
        with zf:
            members = [m for m in zf.namelist() if m.lower().endswith(".csv") and not m.startswith("__MACOSX")]
            if not members:
                raise DataCorrupt(f"{path}: the zip holds no .csv file")
            with zf.open(members[0]) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
    else:
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            yield fh


# ----------------------------------------------------------------- series
@dataclass
class MonthlySeries:
    """A monthly temperature series without gaps."""

    city: str
    country: str
    months: np.ndarray  # datetime64[M], consecutive
    values: np.ndarray  # deg C
    source: str
    notes: list[str] = field(default_factory=list)  # what was done about missing months

    @property
    def years(self) -> np.ndarray:
        """Decimal years (1990.0 = January 1990) for plotting."""
        m = self.months.astype("datetime64[M]").astype(np.int64)
        return 1970 + m / 12.0

    def __len__(self) -> int:
        return len(self.values)


def fill_gaps(months: np.ndarray, values: np.ndarray, max_gap: int = 3) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Put the series on a complete monthly grid; drop leading and trailing
    missing months, interpolate inner gaps of at most ``max_gap`` months, and
    start after the last longer gap. Returns the new months, values and a
    description of each thing done."""
    notes: list[str] = []
    order = np.argsort(months)
    months, values = months[order], values[order]
    if len(months) and len(np.unique(months)) != len(months):
        keep = np.concatenate([[True], months[1:] != months[:-1]])
        notes.append(f"{int((~keep).sum())} duplicate months dropped (first kept)")
        months, values = months[keep], values[keep]
    if len(months) == 0:
        return months, values, ["no data"]
    grid = np.arange(months[0], months[-1] + 1, dtype="datetime64[M]")
    full = np.full(len(grid), np.nan)
    full[(months - months[0]).astype(np.int64)] = values
    absent = len(grid) - len(months)
    if absent:
        notes.append(f"{absent} months absent from the file counted as missing")
    ok = np.isfinite(full)
    if not ok.any():
        return grid[:0], full[:0], notes + ["every value is missing"]
    first, last = int(np.argmax(ok)), len(ok) - 1 - int(np.argmax(ok[::-1]))
    if first:
        notes.append(f"{first} leading missing months dropped ({grid[0]} to {grid[first - 1]})")
    if last < len(ok) - 1:
        notes.append(f"{len(ok) - 1 - last} trailing missing months dropped ({grid[last + 1]} to {grid[-1]})")
    grid, full, ok = grid[first:last + 1], full[first:last + 1], ok[first:last + 1]
    # runs of missing months inside the series
    gaps, i = [], 0
    while i < len(ok):
        if not ok[i]:
            j = i
            while not ok[j]:
                j += 1
            gaps.append((i, j))  # missing i..j-1
            i = j
        else:
            i += 1
    long_gaps = [(a, b) for a, b in gaps if b - a > max_gap]
    if long_gaps:
        a, b = long_gaps[-1]
        notes.append(f"the series starts at {grid[b]}, after a gap of {b - a} months ({grid[a]} to {grid[b - 1]}) "
                     f"longer than {max_gap}; {b} earlier months dropped")
        grid, full, ok = grid[b:], full[b:], ok[b:]
        gaps = [(x - b, y - b) for x, y in gaps if x >= b]
    if gaps:
        idx = np.arange(len(full))
        full = np.interp(idx, idx[ok], full[ok])
        n = sum(y - x for x, y in gaps)
        notes.append(f"{n} missing months in {len(gaps)} short gaps (at most {max_gap} months) filled by linear "
                     f"interpolation")
    if not notes:
        notes.append("no missing months")
    return grid, full, notes


def _read_berkeley(path: Path, city: str, country: str | None) -> tuple[dict, list[str]]:
    """{(city, country, lat, lon): [(month, value or nan)]} for lines naming ``city``."""
    groups: dict[tuple, list] = {}
    needle = city.lower()
    with open_text(path) as fh:
        header_line = fh.readline()
        header = next(csv.reader([header_line]))
        missing = [c for c in BERKELEY_COLUMNS if c not in header]
        if missing:
            raise DataCorrupt(f"{path}:1: not a Berkeley Earth city file; columns {', '.join(missing)} missing "
                              f"(found: {', '.join(header)})")
        col = {c: header.index(c) for c in header}
        n_cols = len(header)
        for lineno, line in enumerate(fh, start=2):
            if needle not in line.lower():  # cheap test first: most lines are other cities
                continue
            row = next(csv.reader([line]))
            if len(row) != n_cols:
                raise DataCorrupt(f"{path}:{lineno}: expected {n_cols} fields, found {len(row)}")
            if row[col["City"]].lower() != needle:
                continue
            if country and row[col["Country"]].lower() != country.lower():
                continue
            try:
                month = np.datetime64(row[col["dt"]][:7], "M")
            except ValueError:
                raise DataCorrupt(f"{path}:{lineno}: date {row[col['dt']]!r} is not YYYY-MM-DD") from None
            text = row[col["AverageTemperature"]].strip()
            try:
                value = float(text) if text else np.nan
            except ValueError:
                raise DataCorrupt(f"{path}:{lineno}: temperature {text!r} is not a number") from None
            key = (row[col["City"]], row[col["Country"]], row[col["Latitude"]] if "Latitude" in col else "",
                   row[col["Longitude"]] if "Longitude" in col else "")
            groups.setdefault(key, []).append((month, value))
    return groups, header


def berkeley_cities(path: Path) -> list[str]:
    """Every city named in a Berkeley file (a full pass; used for suggestions)."""
    names = set()
    with open_text(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        if "City" not in header:
            return []
        i = header.index("City")
        for row in reader:
            if len(row) > i:
                names.add(row[i])
    return sorted(names)


def read_era_interim(path: Path) -> tuple[str, np.ndarray, np.ndarray, list[str]]:
    """Daily kelvin -> monthly mean deg C. Returns city, months, values, notes."""
    sums: dict[np.datetime64, list[float]] = {}
    city = ""
    with open_text(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        if ERA_VALUE not in header or "Date" not in header:
            raise DataCorrupt(f"{path}:1: not an ERA-Interim city file; expected columns Date and {ERA_VALUE!r}")
        i_date, i_val = header.index("Date"), header.index(ERA_VALUE)
        i_city = header.index("CityName") if "CityName" in header else None
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise DataCorrupt(f"{path}:{lineno}: expected {len(header)} fields, found {len(row)}")
            date = row[i_date].strip()
            if not re.fullmatch(r"\d{8}", date):
                raise DataCorrupt(f"{path}:{lineno}: date {date!r} is not YYYYMMDD")
            try:
                kelvin = float(row[i_val])
            except ValueError:
                raise DataCorrupt(f"{path}:{lineno}: temperature {row[i_val]!r} is not a number") from None
            if i_city is not None and not city:
                city = row[i_city]
            month = np.datetime64(f"{date[:4]}-{date[4:6]}", "M")
            acc = sums.setdefault(month, [0.0, 0])
            acc[0] += kelvin - 273.15
            acc[1] += 1
    if not sums:
        raise DataCorrupt(f"{path}: no data rows")
    months = np.array(sorted(sums), dtype="datetime64[M]")
    values = np.array([sums[m][0] / sums[m][1] for m in months])
    days = int(sum(v[1] for v in sums.values()))
    notes = [f"ERA-Interim: {days} daily noon values (kelvin) averaged to {len(months)} monthly means in deg C"]
    return city, months, values, notes


def load_city_series(city: str, country: str | None = None, source: str = "auto", max_gap: int = 3,
                     root: Path | None = None) -> MonthlySeries:
    """The monthly series of ``city`` (deg C, no gaps) from the climate folder.

    ``source``: "berkeley" (Kaggle/Berkeley Earth files), "era-interim", or
    "auto" (Berkeley Earth when it has the city, else ERA-Interim)."""
    root = root or require("climate")
    tried = []
    if source in ("auto", "berkeley"):
        files = berkeley_sources(root)
        # per-city extracts of other cities cannot hold this one
        squash = lambda s: re.sub(r"[^a-z0-9]", "", s.lower())  # noqa: E731
        files = [f for f in files if "_" not in f.stem or squash(f.stem.split("_", 1)[1]) == squash(city)]
        for path in files:
            groups, _ = _read_berkeley(path, city, country)
            tried.append(path.name)
            if not groups:
                continue
            if len(groups) > 1:
                where = "; ".join(f"{c}, {k} ({la} {lo})" for c, k, la, lo in groups)
                raise ValueError(f"city {city!r} is ambiguous in {path.name}: {where}; set country")
            (name, ctry, lat, lon), rows = next(iter(groups.items()))
            months = np.array([r[0] for r in rows], dtype="datetime64[M]")
            values = np.array([r[1] for r in rows], dtype=np.float64)
            n_missing = int(np.isnan(values).sum())
            m, v, notes = fill_gaps(months, values, max_gap)
            notes.insert(0, f"{len(values)} monthly rows, {n_missing} without a temperature")
            return MonthlySeries(name, ctry, m, v, f"Berkeley Earth, {path.name} ({lat} {lon})", notes)
    if source in ("auto", "era-interim"):
        path = era_source(city, root)
        tried.append(path.name)
        if path.exists():
            name, months, values, notes = read_era_interim(path)
            m, v, more = fill_gaps(months, values, max_gap)
            note = ["ERA-Interim reanalysis (noon values), not Berkeley Earth"] if source == "auto" else []
            return MonthlySeries(name or city, country or "", m, v, f"ECMWF ERA-Interim, {path.name}",
                                 note + notes + more)
    hint = ""
    if source in ("auto", "berkeley"):
        majors = [f for f in berkeley_sources(root) if "_" not in f.stem]
        if majors:
            close = difflib.get_close_matches(city, berkeley_cities(majors[0]), n=3, cutoff=0.6)
            if close:
                hint = f"; did you mean {', '.join(close)}?"
    if city_slug(city) == "brussels" and source != "era-interim":
        hint += (" (Brussels is not among the 100 major cities: use GlobalLandTemperaturesByCity.csv, or "
                 f"source = \"era-interim\" with {ERA_PREFIX}brussels.csv)")
    raise DataMissing(f"no monthly series for {city!r}{f' ({country})' if country else ''} in "
                      f"{climate_dir(root)} (looked in: {', '.join(tried) or 'no climate files'}){hint}")


# ----------------------------------------------------------------- import
def import_climate(path: str | Path, root: Path | None = None) -> Path:
    """Copy a user's Berkeley Earth CSV/zip (or an ERA-Interim city CSV) into
    ``<data>/climate/``; returns the file written. The header is checked first."""
    src = Path(path).expanduser()
    if not src.is_file():
        raise DataMissing(f"{src}: no such file")
    dest_dir = climate_dir(root)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with open_text(src) as fh:
        header = next(csv.reader([fh.readline()]), [])
        if all(c in header for c in BERKELEY_COLUMNS):
            if src.suffix.lower() == ".zip":
                with zipfile.ZipFile(src) as zf:
                    member = next(m for m in zf.namelist() if m.lower().endswith(".csv"))
                name = Path(member).name
            else:
                name = src.name
            if not name.startswith("GlobalLandTemperaturesBy"):
                name = "GlobalLandTemperaturesByCity.csv" if "Latitude" in header else name
        elif ERA_VALUE in header:
            row = next(csv.reader([fh.readline()]), [])
            city = row[header.index("CityName")] if "CityName" in header and len(row) == len(header) else ""
            if not city:
                raise DataCorrupt(f"{src}:2: ERA-Interim file without a CityName")
            name = f"{ERA_PREFIX}{city_slug(city)}.csv"
        else:
            raise DataCorrupt(f"{src}:1: not a Berkeley Earth city temperature CSV (expected columns "
                              f"{', '.join(BERKELEY_COLUMNS)}) nor an ERA-Interim city file")
    dest = dest_dir / name
    tmp = dest.with_suffix(".part")
    with open_text(src) as fh, open(tmp, "w", encoding="utf-8", newline="") as out:
        shutil.copyfileobj(fh, out, length=1 << 20)  # streamed: the by-city file is 500+ MB
    tmp.replace(dest)
    return dest


register(DataSet(
    name="climate", title="Monthly city temperatures (Berkeley Earth / Kaggle, or ERA-Interim)",
    files=[f"{FOLDER}/{stem}{suffix}" for stem in ("GlobalLandTemperaturesByMajorCity", "GlobalLandTemperaturesByCity")
           for suffix in (".csv", ".zip")]
    + [f"{FOLDER}/GlobalLandTemperaturesByMajorCity_RioDeJaneiro.csv", f"{FOLDER}/{ERA_PREFIX}brussels.csv",
       f"{FOLDER}/{ERA_PREFIX}rio_de_janeiro.csv"],
    any_of=True,
    source="Kaggle 'Climate Change: Earth Surface Temperature Data' (Berkeley Earth); ECMWF ERA-Interim city series",
    hint=IMPORT_HINT))
