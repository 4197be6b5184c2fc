import struct
import zlib
from pathlib import Path

import pytest

from deephash.collection.log import LOG_MAGIC, AppendLog, read_log, write_new_log

RECORDS = [
    {"op": "begin", "next_id": 0},
    {"op": "add", "items": [{"id": 0, "code": "00ff", "label": "é"}]},
    {"op": "remove", "ids": [0]},
]


def make_log(path: Path) -> list[int]:
    """Write RECORDS; returns the file size after each record."""
    write_new_log(path, RECORDS[0])
    log = AppendLog(path, path.stat().st_size)
    ends = [log.size]
    for r in RECORDS[1:]:
        log.append(r)
        ends.append(log.size)
    log.close()
    return ends


def test_roundtrip_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    ends = make_log(path)
    got = read_log(path)
    assert got.records == RECORDS and got.valid_end == got.size == ends[-1]
    # hand-decode the layout: magic, then (length, crc32, JSON) records
    data = path.read_bytes()
    assert data.startswith(LOG_MAGIC)
    length, crc = struct.unpack_from("<II", data, len(LOG_MAGIC))
    payload = data[len(LOG_MAGIC) + 8 : len(LOG_MAGIC) + 8 + length]
    assert zlib.crc32(payload) == crc and payload == b'{"op":"begin","next_id":0}'


def test_every_torn_tail_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    ends = make_log(path)
    full = path.read_bytes()
    for cut in range(ends[0], len(full)):
        path.write_bytes(full[:cut])
        got = read_log(path)
        complete = sum(e <= cut for e in ends)
        assert got.records == RECORDS[:complete]
        assert got.valid_end == ends[complete - 1] and got.torn_bytes == cut - got.valid_end


def test_flipped_byte_ends_the_log_at_that_record(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    ends = make_log(path)
    data = bytearray(path.read_bytes())
    data[ends[1] + 12] ^= 0x01  # inside the payload of the third record
    path.write_bytes(bytes(data))
    got = read_log(path)
    assert got.records == RECORDS[:2] and got.valid_end == ends[1]


def test_append_cuts_the_torn_tail_first(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    ends = make_log(path)
    with path.open("ab") as f:
        f.write(b"\x40\x00\x00\x00garbage")  # a length that runs past the end
    got = read_log(path)
    assert got.torn_bytes == 11
    log = AppendLog(path, got.valid_end)
    log.append({"op": "remove", "ids": [5]})
    log.close()
    again = read_log(path)
    assert again.records == [*RECORDS, {"op": "remove", "ids": [5]}] and again.torn_bytes == 0
    assert again.size > ends[-1]


def test_foreign_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    path.write_bytes(b"hello world, not a log")
    with pytest.raises(ValueError, match="not a deephash collection log"):
        read_log(path)
