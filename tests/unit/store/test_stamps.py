"""Run stamps: equal inputs give equal hashes, and one changed byte changes them."""

from __future__ import annotations

import dataclasses
import re
import subprocess

import numpy as np
import pytest

from polytrade.store import RunStamps, code_version, data_fingerprint, spec_hash

HEX = re.compile(r"sha256:[0-9a-f]{64}")


def columns() -> dict[str, np.ndarray]:
    ts = np.arange(1_700_000_000_000, 1_700_000_000_000 + 100 * 60_000, 60_000, dtype=np.int64)
    close = np.linspace(40_000.0, 41_000.0, 100)
    return {"ts": ts, "close": close, "volume": np.full(100, 3.5)}


SPECS = [
    ("profiles/backtest.yaml", b"kind: Profile\nspec: {days: 60}\n"),
    ("strategies/trend_htf.yaml", b"kind: Strategy\nspec: {fast: 12}\n"),
]


# ---------------------------------------------------------------------- data fingerprint


def test_the_same_data_has_the_same_fingerprint_in_any_column_order() -> None:
    data = columns()
    fingerprint = data_fingerprint(data)
    assert HEX.fullmatch(fingerprint)
    assert data_fingerprint(dict(reversed(list(data.items())))) == fingerprint
    assert data_fingerprint({name: array.copy() for name, array in data.items()}) == fingerprint


def test_the_fingerprint_ignores_memory_layout_and_byte_order() -> None:
    data = columns()
    strided = np.repeat(data["close"], 2)[::2]  # same values, not contiguous
    big_endian = data["ts"].astype(">i8")
    assert data_fingerprint({**data, "close": strided, "ts": big_endian}) == data_fingerprint(data)


def test_one_changed_byte_changes_the_fingerprint() -> None:
    data = columns()
    raw = bytearray(data["close"].tobytes())
    raw[-1] ^= 0x01  # the last bit of the last close
    changed = {**data, "close": np.frombuffer(bytes(raw), dtype=np.float64)}
    assert data_fingerprint(changed) != data_fingerprint(data)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: {**d, "close": d["close"].astype(np.float32)},  # dtype
        lambda d: {"time": d["ts"], "close": d["close"], "volume": d["volume"]},  # a name
        lambda d: {**d, "volume": d["volume"][:-1]},  # a length
        lambda d: {**d, "close": d["close"].reshape(10, 10)},  # a shape
        lambda d: {k: v for k, v in d.items() if k != "volume"},  # a column fewer
    ],
)
def test_the_names_dtypes_and_shapes_are_part_of_the_fingerprint(change) -> None:
    data = columns()
    assert data_fingerprint(change(data)) != data_fingerprint(data)


def test_object_columns_have_no_fingerprint() -> None:
    with pytest.raises(TypeError, match="column label holds Python objects"):
        data_fingerprint({"label": np.array(["a", None], dtype=object)})


# ---------------------------------------------------------------------- spec hash


def test_the_same_specs_have_the_same_hash() -> None:
    assert spec_hash(SPECS) == spec_hash(iter(list(SPECS)))
    assert HEX.fullmatch(spec_hash(SPECS))


def test_one_changed_byte_or_name_or_order_changes_the_spec_hash() -> None:
    reference = spec_hash(SPECS)
    (name, content), second = SPECS
    flipped = bytes([content[0] ^ 0x20]) + content[1:]
    assert spec_hash([(name, flipped), second]) != reference
    assert spec_hash([(name.upper(), content), second]) != reference
    assert spec_hash([second, (name, content)]) != reference


def test_bytes_moved_from_one_file_to_the_next_change_the_spec_hash() -> None:
    assert spec_hash([("a", b"xy"), ("b", b"z")]) != spec_hash([("a", b"x"), ("b", b"yz")])


# ---------------------------------------------------------------------- code version


def test_the_code_version_names_the_package_version_and_the_checkout(repo) -> None:
    code_version.cache_clear()  # computed now, beside the git describe below
    described = subprocess.run(
        ["git", "-C", str(repo), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    version = code_version()
    assert version.startswith("0.1.0")
    if described.returncode == 0:
        assert version == f"0.1.0 git {described.stdout.strip()}"
    else:
        assert version == "0.1.0"


def test_without_git_the_code_version_is_the_package_version(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "")
    code_version.cache_clear()
    try:
        assert code_version() == "0.1.0"
    finally:
        code_version.cache_clear()


def test_run_stamps_are_frozen() -> None:
    stamps = RunStamps("sha256:a", "sha256:b", "0.1.0", seed=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stamps.seed = 1  # type: ignore[misc]
