"""The simulator refuses bad input before it publishes anything (no broker: a paho client that never connected
keeps every QoS 1 message it was asked to publish in `_out_messages`, which the simulator itself waits on)."""
import shutil

import paho.mqtt.client as mqtt
import pytest

from include.gaitpdb import SAMPLE_DIR, DatasetError
from include.simulator import publish_recordings


@pytest.fixture
def client():
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)


def published(client) -> int:
    return len(client._out_messages)  # what publish() queued (private: paho has no public count)


def test_unknown_recordings_are_named_before_anything_is_published(client):
    """Params take any well-formed id ("GaCo99_01"); only the folder knows it has no such recording."""
    with pytest.raises(DatasetError) as error:
        publish_recordings(client, SAMPLE_DIR, recordings=["GaCo01_01", "GaCo99_01", "JuPt98_02"])
    assert str(SAMPLE_DIR) in str(error.value) and "['GaCo99_01', 'JuPt98_02']" in str(error.value)
    assert "GaCo01_01" not in str(error.value)
    assert published(client) == 0


@pytest.fixture
def folder_with_corrupt_file(tmp_path):
    """Two good recordings around one whose line 3 has a letter for a number."""
    for name in ("GaCo01_01", "JuPt01_01"):
        shutil.copy(SAMPLE_DIR / f"{name}.txt", tmp_path / f"{name}.txt")
    lines = (SAMPLE_DIR / "GaPt03_01.txt").read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"\t", b"\tx", 1)
    (tmp_path / "GaPt03_01.txt").write_bytes(b"".join(lines))
    return tmp_path


def test_corrupt_file_is_named_with_its_line(client, folder_with_corrupt_file):
    with pytest.raises(DatasetError) as error:
        publish_recordings(client, folder_with_corrupt_file)
    assert f"{folder_with_corrupt_file / 'GaPt03_01.txt'}:3: not a number" in str(error.value)


def test_corrupt_file_stops_the_simulator_before_it_publishes(client, folder_with_corrupt_file):
    """A failed simulate task must leave nothing queued for the capture: a retry, or the next run's capture,
    would otherwise take in recordings of a run that failed (GaCo01_01 comes before the corrupt GaPt03_01)."""
    with pytest.raises(DatasetError):
        publish_recordings(client, folder_with_corrupt_file)
    assert published(client) == 0
