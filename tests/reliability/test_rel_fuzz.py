"""Catalogue, FUZZ: seeded byte-flip and truncation mutants of a ``.fits.gz``, a ``.fits``
and a ``.nc`` file written by xdl4. Each mutant must raise an ``xdl4.DL4Error`` or load
data identical to the original (never another error, never different data, never hang).
Run with ``-s`` to print the outcome table."""

import collections
import random
import warnings

import pytest
import xarray as xr

import xdl4

MUTANTS = 150  # per file


def _mutate(raw: bytes, rng: random.Random) -> tuple[str, bytes]:
    b = bytearray(raw)
    kind = rng.choice(["flip", "flip", "byte", "flips8", "truncate"])
    if kind == "truncate":
        return kind, bytes(b[: rng.randrange(len(b))])
    for _ in range(8 if kind == "flips8" else 1):
        i = rng.randrange(len(b))
        b[i] = rng.randrange(256) if kind == "byte" else b[i] ^ (1 << rng.randrange(8))
    return kind, bytes(b)


def _outcome(path, reference) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = xdl4.open_dataset(path).load()
    except xdl4.DL4Error:
        return "typed error"
    except Exception as err:  # noqa: BLE001 - counted, then the test fails
        return f"other: {type(err).__name__}: {err}"[:200]
    try:
        xr.testing.assert_identical(got, reference)
    except AssertionError:
        return "DIFFERENT data"
    return "identical"


@pytest.mark.timeout(120)
def test_fuzz_mutants(tmp_path, capsys):
    ds = xdl4.examples.map_dataset(width=1.0, binsz=0.2)
    rng = random.Random(20151)
    table = {}
    for name in ("map.fits.gz", "map.fits", "map.nc"):
        src = tmp_path / name
        (ds.dl4.to_netcdf if name.endswith(".nc") else ds.dl4.to_gadf)(src)
        reference = xdl4.open_dataset(src).load()
        raw = src.read_bytes()
        counts: collections.Counter = collections.Counter()
        for i in range(MUTANTS):
            kind, data = _mutate(raw, rng)
            mutant = tmp_path / f"m{i}_{name}"
            mutant.write_bytes(data)
            counts[_outcome(mutant, reference)] += 1
            mutant.unlink()
        table[name] = counts
    with capsys.disabled():
        print("\nfuzz outcomes (mutants x outcome):")
        for name, counts in table.items():
            print(f"  {name:12s} {dict(counts)}")
    bad = {n: {k: v for k, v in c.items() if k not in ("typed error", "identical")}
           for n, c in table.items()}
    assert not any(bad.values()), bad
