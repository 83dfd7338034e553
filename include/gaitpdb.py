"""PhysioNet gaitpdb 1.0.0: recording names, file reading, the bundled sample and the full download."""

from __future__ import annotations

import hashlib
import re
import tarfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from include.errors import BadInput

N_COLUMNS = 19  # time, L1..L8, R1..R8, left total, right total
CHANNELS = tuple([f"l{i}" for i in range(1, 9)] + [f"r{i}" for i in range(1, 9)] + ["left_total", "right_total"])

SAMPLE_DIR = Path(__file__).resolve().parent / "sample" / "gaitpdb"
PHYSIONET_ZIP_URL = "https://physionet.org/static/published-projects/gaitpdb/gait-in-parkinsons-disease-1.0.0.zip"

# ASCII digits and a true end (`$` would also accept a trailing newline, `\d` any script's digits).
RECORDING_ID = re.compile(r"^(?P<study>Ga|Ju|Si)(?P<group>Co|Pt)(?P<number>[0-9]{2})_(?P<walk>[0-9]{2})\Z")


class DatasetError(BadInput, ValueError):
    """A recording file or dataset folder is not what gaitpdb promises; says which file and line."""


@dataclass(frozen=True)
class RecordingId:
    recording_id: str
    study: str  # Ga | Ju | Si
    group: str  # Co (control) | Pt (Parkinson's)
    subject_number: int
    walk: int

    @property
    def subject_id(self) -> str:
        return self.recording_id.split("_")[0]

    @property
    def label(self) -> int:
        return 1 if self.group == "Pt" else 0


def parse_recording_id(recording_id: str) -> RecordingId:
    match = RECORDING_ID.match(recording_id)
    if not match:
        raise DatasetError(f"{recording_id!r} is not a gaitpdb recording id like 'GaCo01_01'")
    return RecordingId(recording_id, match["study"], match["group"], int(match["number"]), int(match["walk"]))


def read_recording(path: Path) -> np.ndarray:
    """Rows of one recording as a float64 array (n, 19); CRLF or LF; a clear error names file and line."""
    data = Path(path).read_bytes()
    if data and not data.endswith(b"\n"):
        line_no = data.count(b"\n") + 1
        raise DatasetError(f"{path}:{line_no}: truncated last line (no line ending)")
    lines = data.splitlines()
    if not data.strip():
        raise DatasetError(f"{path}: no readings")
    try:
        rows = np.loadtxt(lines, delimiter="\t", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        _raise_first_bad_line(path, lines)
        raise DatasetError(f"{path}: {exc}") from None
    if rows.shape[1] != N_COLUMNS or not np.isfinite(rows).all():
        _raise_first_bad_line(path, lines)
    return rows


def _raise_first_bad_line(path: Path, lines: list[bytes]) -> None:
    for line_no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        fields = raw.strip(b" \r\n").split(b"\t")
        if len(fields) != N_COLUMNS:
            raise DatasetError(f"{path}:{line_no}: expected {N_COLUMNS} tab-separated columns, found {len(fields)}")
        try:
            if any(b"_" in f for f in fields):  # float() accepts 1_0, the recording format does not
                raise ValueError
            values = [float(f) for f in fields]
        except ValueError:
            raise DatasetError(f"{path}:{line_no}: not a number in {raw[:80]!r}") from None
        if not np.isfinite(values).all():
            raise DatasetError(f"{path}:{line_no}: NaN or infinite value")


def recording_files(folder: Path, only: list[str] | None = None) -> list[Path]:
    """Recording files of a gaitpdb folder, sorted; `only` restricts to these recording ids."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such dataset folder")
    files = sorted(p for p in folder.glob("*.txt") if RECORDING_ID.match(p.stem))
    if only:
        wanted = set(only)
        unknown = wanted - {p.stem for p in files}
        if unknown:
            raise DatasetError(f"{folder}: unknown recording(s) {sorted(unknown)}")
        files = [p for p in files if p.stem in wanted]
    if not files:
        raise DatasetError(f"{folder}: no gaitpdb recordings (*.txt like GaCo01_01.txt)")
    return files


def iter_recordings(folder: Path, only: list[str] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    for path in recording_files(folder, only):
        yield path.stem, read_recording(path)


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack PhysioNet's zip or the shared tar.gz into dest; returns the folder holding the recordings."""
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")
    folder = next((p.parent for p in sorted(dest.rglob("GaCo01_01.txt"))), None)
    if folder is None:
        raise DatasetError(f"{archive}: no gaitpdb recordings inside")
    verify_checksums(folder)
    return folder


def verify_checksums(folder: Path) -> int:
    """Check PhysioNet's SHA256SUMS.txt when present; returns the number of files checked."""
    sums = folder / "SHA256SUMS.txt"
    if not sums.exists():
        return 0
    checked = 0
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = folder / name.strip().lstrip("*")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise DatasetError(f"{path}: sha256 does not match SHA256SUMS.txt")
        checked += 1
    return checked


def download(dest: Path, url: str = PHYSIONET_ZIP_URL) -> Path:
    """Download the full dataset from PhysioNet (about 85 MB) and unpack it; reuses an earlier download."""
    archive = dest / Path(url).name
    if not archive.exists():
        dest.mkdir(parents=True, exist_ok=True)
        partial = archive.with_suffix(".part")
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        partial.rename(archive)
    return unpack(archive, dest)
