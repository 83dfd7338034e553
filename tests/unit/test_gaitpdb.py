import numpy as np
import pytest

from include import gaitpdb
from include.gaitpdb import DatasetError


def test_parse_recording_id():
    rid = gaitpdb.parse_recording_id("JuPt18_01")
    assert (rid.study, rid.group, rid.subject_number, rid.walk, rid.subject_id, rid.label) == \
        ("Ju", "Pt", 18, 1, "JuPt18", 1)
    assert gaitpdb.parse_recording_id("SiCo03_01").label == 0
    with pytest.raises(DatasetError):
        gaitpdb.parse_recording_id("GaCo1_01")


def test_bundled_sample():
    files = gaitpdb.recording_files(gaitpdb.SAMPLE_DIR)
    assert len(files) == 13
    rows = gaitpdb.read_recording(files[0])
    assert rows.shape == (1050, 19)
    assert rows[0, 0] == 0.0 and rows[1, 0] == pytest.approx(0.01)


def test_crlf_and_lf_agree(tmp_path):
    lf, crlf = tmp_path / "GaCo01_01.txt", tmp_path / "GaCo02_01.txt"
    lines = ["\t".join(str(i + j) for j in range(19)) for i in range(3)]
    lf.write_text("\n".join(lines) + "\n")
    crlf.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    assert np.array_equal(gaitpdb.read_recording(lf), gaitpdb.read_recording(crlf))


@pytest.mark.parametrize("content, message", [
    ("1\t2\t3\n", ":1: expected 19 tab-separated columns, found 3"),
    ("\t".join(["1"] * 19) + "\n" + "\t".join(["1"] * 18) + "\n", ":2: expected 19"),
    ("\t".join(["1"] * 19) + "\n" + "\t".join(["1"] * 19), ":2: truncated last line"),
    ("\t".join(["x"] * 19) + "\n", ":1: not a number"),
    ("\t".join(["NaN"] * 19) + "\n", ":1: NaN or infinite"),
    ("", "no readings"),
    ("\n\n", "no readings"),
    ("\u00ff\u00fe\x00\x01\n", ":1: expected 19 tab-separated columns, found 1"),
    ("Time\t" + "\t".join(f"L{i}" for i in range(18)) + "\n", ":1: not a number"),  # a header line
    (",".join(["1"] * 19) + "\n", ":1: expected 19 tab-separated columns, found 1"),
    ("\t".join(["1"] * 19) + "\n" + "\t".join(["inf"] * 19) + "\n", ":2: NaN or infinite"),
    ("\t".join(["1"] * 19) + "\r\n" + "\t".join(["1"] * 19), ":2: truncated last line"),
    # numpy refuses these, Python's float() takes them: today a bare ValueError naming neither file nor line
    # (a trailing tab, i.e. an empty 20th column; a digit separator)
    ("\t".join(["1"] * 19) + "\t\n", ":1: expected 19 tab-separated columns, found 20"),
    ("\t".join(["1_0"] * 19) + "\n", ":1: not a number"),
])
def test_corrupt_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "GaCo01_01.txt"
    path.write_text(content)
    with pytest.raises(DatasetError) as error:
        gaitpdb.read_recording(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_recording_files_filters_and_rejects_unknown():
    assert [p.stem for p in gaitpdb.recording_files(gaitpdb.SAMPLE_DIR, ["GaPt03_01"])] == ["GaPt03_01"]
    with pytest.raises(DatasetError, match="unknown recording"):
        gaitpdb.recording_files(gaitpdb.SAMPLE_DIR, ["GaPt99_01"])
