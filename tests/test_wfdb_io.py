from pathlib import Path

import numpy as np
import pytest
import wfdb

from kmerl.records import Reason, RecordError
from kmerl.wfdb_io import parse_header, read_header, read_signal, signal_length


def _all_records(shared_data: Path) -> list[Path]:
    headers = sorted(shared_data.glob("ptbxl/records100/*/*.hea"))[:40]
    headers += sorted(shared_data.glob("ptbxl/records500/*/*.hea"))[:10]
    headers += sorted(shared_data.glob("cinc2021/*.hea"))
    headers += sorted(shared_data.glob("wfdb-samples/*.hea"))
    return [h.with_suffix("") for h in headers]


def test_reader_matches_wfdb_on_every_layout(shared_data: Path) -> None:
    records = _all_records(shared_data)
    assert len(records) > 150
    for record in records:
        header = read_header(record)
        stop = min(signal_length(record, header), 4000)
        ours = read_signal(record, header, 100, stop)
        theirs = wfdb.rdrecord(str(record), sampfrom=100, sampto=stop)
        assert ours.names == theirs.sig_name, record
        assert header.fs == theirs.fs, record
        np.testing.assert_allclose(ours.samples, theirs.p_signal, rtol=1e-6, atol=1e-9, err_msg=str(record))


def test_header_fields_and_defaults() -> None:
    header = parse_header(
        b"rec 2 360 650000 10:00:00 01/01/2000\n"
        b"rec.dat 16 200(10)/uV 11 1024 995 -22131 0 lead one\n"
        b"rec.dat 16+24\n# a comment\n",
        Path("rec.hea"),
    )
    first, second = header.signals
    assert (header.fs, header.sig_len, header.base_time) == (360.0, 650000, "10:00:00")
    assert (first.gain, first.baseline, first.units, first.name) == (200.0, 10, "uV", "lead one")
    assert (second.gain, second.baseline, second.units, second.byte_offset) == (200.0, 0, "mV", 24)
    assert header.comments == ("a comment",)


@pytest.mark.parametrize(
    "text",
    [b"", b"rec\n", b"rec 2 500 5000\nrec.dat 16 1000/mV 16 0 0 0 0 I\n", b"rec 1 500 5000\nrec.dat sixteen\n"],
    ids=["empty", "no-signal-count", "missing-signal-line", "bad-format"],
)
def test_malformed_headers_raise_with_the_file_named(text: bytes) -> None:
    with pytest.raises(RecordError) as caught:
        parse_header(text, Path("/data/rec.hea"))
    assert caught.value.reason is Reason.MALFORMED_HEADER
    assert "/data/rec.hea" in caught.value.detail


def test_non_utf8_header_is_read_and_flagged() -> None:
    header = parse_header(b"rec 1 500 10\nrec.dat 16 1000/mV 16 0 0 0 0 I\n# Befund: \xfcber\n", Path("rec.hea"))
    assert header.lossy_text
    assert header.comments == ("Befund: \ufffdber",)
