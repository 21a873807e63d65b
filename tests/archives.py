"""Builders of small archives for tests, made from the real sample records."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import wfdb


def copy_record(src: Path, dst_dir: Path, new_name: str | None = None) -> Path:
    """Copy a WFDB record (header + signal files), renaming it; return the new record path."""
    header = wfdb.rdheader(str(src))
    new_name = new_name or src.name
    dst_dir.mkdir(parents=True, exist_ok=True)
    text = src.with_suffix(".hea").read_text()
    for file_name in dict.fromkeys(header.file_name):
        new_file = file_name.replace(src.name, new_name, 1)
        shutil.copyfile(src.parent / file_name, dst_dir / new_file)
        text = text.replace(file_name, new_file)
    text = text.replace(src.name, new_name, 1)
    (dst_dir / f"{new_name}.hea").write_text(text)
    return dst_dir / new_name


def write_record(
    dst_dir: Path, name: str, signal: np.ndarray, fs: float, lead_names: list[str], comments: list[str] | None = None
) -> Path:
    """Write a format-16 WFDB record from a (samples, channels) array in mV (NaN -> invalid)."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * len(lead_names),
        sig_name=lead_names,
        p_signal=signal,
        fmt=["16"] * len(lead_names),
        adc_gain=[1000.0] * len(lead_names),
        baseline=[0] * len(lead_names),
        comments=comments or [],
        write_dir=str(dst_dir),
    )
    return dst_dir / name


def read_ptbxl_rows(ptbxl_root: Path) -> list[dict[str, str]]:
    with (ptbxl_root / "ptbxl_database.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_ptbxl_subset(
    ptbxl_root: Path, dst: Path, rows: list[dict[str, str]], encoding_errors: dict[int, bytes] | None = None
) -> Path:
    """A PTB-XL layout in ``dst`` with the given CSV rows; signal folders link to the real ones.

    ``encoding_errors`` maps a row index to raw bytes appended to that row's report,
    to produce a CSV that is not valid UTF-8.
    """
    dst.mkdir(parents=True, exist_ok=True)
    for folder in ("records100", "records500"):
        (dst / folder).symlink_to(ptbxl_root / folder, target_is_directory=True)
    fields = list(rows[0])
    lines = [",".join(fields).encode()]
    for index, row in enumerate(rows):
        cells = []
        for field in fields:
            value = row[field].encode()
            if field == "report" and encoding_errors and index in encoding_errors:
                value += encoding_errors[index]
            cells.append(b'"' + value.replace(b'"', b'""') + b'"')
        lines.append(b",".join(cells))
    (dst / "ptbxl_database.csv").write_bytes(b"\n".join(lines) + b"\n")
    return dst


MIMIC_LEADS = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
MIMIC_REPORTS = [
    ["Sinus rhythm", "", "Left axis deviation", "Abnormal ECG"],
    ["Atrial fibrillation.", "Low QRS voltages in precordial leads"],
    ["Sinus bradycardia", "Otherwise normal ECG"],
]


def write_mimic_archive(dst: Path, ptbxl_root: Path, ecg_ids: list[int]) -> dict[str, dict[str, object]]:
    """A MIMIC-IV-ECG layout built from real PTB-XL 500 Hz signals.

    Channels are stored in MIMIC's order (aVF before aVL); machine_measurements.csv
    lists studies in the reverse order of record_list.csv, so only a join by
    study_id gives the right report; the last study has no measurements row and
    one measurements row belongs to no record. Returns what the ingest should find,
    by study id.
    """
    expected: dict[str, dict[str, object]] = {}
    record_rows, measurement_rows = [], []
    for k, ecg_id in enumerate(ecg_ids):
        subject, study = 10000032 + k // 2, 40000000 + 17 * k
        source = ptbxl_root / "records500" / f"{ecg_id // 1000 * 1000:05d}" / f"{ecg_id:05d}_hr"
        record = wfdb.rdrecord(str(source))
        order = [[n.upper() for n in record.sig_name].index(lead.upper()) for lead in MIMIC_LEADS]
        relative = f"files/p{str(subject)[:4]}/p{subject}/s{study}/{study}"
        write_record(dst / Path(relative).parent, str(study), record.p_signal[:, order], 500, MIMIC_LEADS)
        record_rows.append([subject, study, str(study), "2180-07-21 06:13:00", relative])
        statements = MIMIC_REPORTS[k % len(MIMIC_REPORTS)]
        has_report = k < len(ecg_ids) - 1
        if has_report:
            measurement_rows.append(
                [subject, study, 6848, "2180-07-21 06:13:00", *statements, *[""] * (18 - len(statements))]
            )
        report = ". ".join(s.rstrip(".") for s in statements if s) if has_report else None
        expected[str(study)] = {"subject": str(subject), "report": report, "source": source, "relative": relative}
    measurement_rows.append([99999999, 49999999, 6848, "2180-07-21 06:13:00", "Orphan report", *[""] * 17])
    _write_csv(dst / "record_list.csv", ["subject_id", "study_id", "file_name", "ecg_time", "path"], record_rows)
    report_columns = [f"report_{i}" for i in range(18)]
    _write_csv(
        dst / "machine_measurements.csv",
        ["subject_id", "study_id", "cart_id", "ecg_time", *report_columns],
        list(reversed(measurement_rows)),
    )
    return expected


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_challenge_in_words(
    cinc_root: Path, dst: Path, count: int, unmapped: dict[str, str] | None = None
) -> dict[str, list[str]]:
    """The first ``count`` Challenge records with their ``# Dx`` codes written as the dx
    mapping's abbreviations, as CPSC2018 ships them; ``unmapped`` adds a label to a
    record (by name). Returns each record's original codes."""
    abbreviations: dict[str, str] = {}
    for path in sorted(cinc_root.glob("dx_mapping_*.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                abbreviations.setdefault(row["SNOMEDCTCode"], row["Abbreviation"])
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(cinc_root.glob("dx_mapping_*.csv")):
        shutil.copyfile(path, dst / path.name)
    codes: dict[str, list[str]] = {}
    for header in sorted(cinc_root.glob("*.hea"))[:count]:
        record = copy_record(header.with_suffix(""), dst)
        lines = record.with_suffix(".hea").read_text().splitlines()
        for index, line in enumerate(lines):
            key, _, value = line.lstrip("#").partition(":")
            if line.startswith("#") and key.strip() == "Dx":
                record_codes = [code.strip() for code in value.split(",")]
                codes[record.name] = record_codes
                words = [abbreviations.get(code, code) for code in record_codes]
                words += [unmapped[record.name]] if unmapped and record.name in unmapped else []
                lines[index] = f"#Dx: {','.join(words)}"
        record.with_suffix(".hea").write_text("\n".join(lines) + "\n")
    return codes
