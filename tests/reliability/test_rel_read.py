"""Catalogue, FILE category: every failure to open or read a file raises an
``xdl4.DL4Error`` naming the file (and the HDU / variable / card); what a reader cannot
represent is refused or warned about, never dropped silently."""

import gzip
import pickle
import shutil

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import xdl4
from xdl4 import DL4Error, DL4FileNotFoundError, DL4Warning, FormatError
from xdl4.io.datasets_index import open_datasets
from xdl4.io.ogip import companion_paths


def _edit_fits(src, dst, hdu_name, edit, checksum=True):
    """A copy of ``src`` with ``edit(hdu)`` applied (checksums updated: a clean edit), or
    ``edit(hdus)`` returning the new HDU list when ``hdu_name`` is None."""
    tmp = dst.with_name(dst.name + ".edit")
    with fits.open(src, memmap=False) as hdul:
        if hdu_name is not None:
            edit(hdul[hdu_name])
            hdul.writeto(tmp, checksum=checksum)
        else:
            fits.HDUList(edit(list(hdul))).writeto(tmp, checksum=checksum)
    tmp.replace(dst)
    return dst


def _flip(src, dst, where: bytes, offset: int = 0):
    raw = bytearray(src.read_bytes())
    i = raw.index(where) + offset
    raw[i] ^= 0x01
    dst.write_bytes(bytes(raw))
    return dst


# --------------------------------------------------------------------------------------
# opening


def test_missing_file(tmp_path):
    with pytest.raises(DL4FileNotFoundError, match="nope.fits"):
        xdl4.open_dataset(tmp_path / "nope.fits")
    with pytest.raises(FileNotFoundError):  # also the built-in a caller expects
        xdl4.open_dataset(tmp_path / "nope.nc")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(FormatError, match="not a file"):
        xdl4.open_dataset(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.fits").write_bytes(b"")
    with pytest.raises(FormatError, match="empty.fits"):
        xdl4.open_dataset(tmp_path / "empty.fits")


def test_unknown_format(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FormatError, match="notes.txt.*unknown file format"):
        xdl4.open_dataset(tmp_path / "notes.txt")


def test_random_bytes_with_fits_suffix(tmp_path):
    (tmp_path / "noise.fits").write_bytes(b"SIMPLE  = " + np.random.default_rng(0).bytes(5000))
    with pytest.raises(FormatError, match="noise.fits"):
        xdl4.open_dataset(tmp_path / "noise.fits")


@pytest.mark.parametrize("name", ["map.fits", "map.fits.gz", "map.nc", "pha.fits"])
def test_truncated_half(small_files, tmp_path, name):
    src = small_files[name]
    bad = tmp_path / name
    bad.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    if name == "pha.fits":
        for key, path in companion_paths(src).items():
            shutil.copy(path, companion_paths(bad)[key])
    with pytest.raises(DL4Error, match=name.replace(".", r"\.")):
        xdl4.open_dataset(bad).load()


def test_gzip_stream_corrupt_is_typed_not_zlib(small_files, tmp_path):
    """A flipped byte in the deflate stream: gzip/zlib errors come out as FormatError."""
    raw = bytearray(small_files["map.fits.gz"].read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    (tmp_path / "z.fits.gz").write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=r"z\.fits\.gz"):
        xdl4.open_dataset(tmp_path / "z.fits.gz")


def test_gzip_crc_mismatch(small_files, tmp_path):
    data = gzip.decompress(small_files["map.fits.gz"].read_bytes())
    raw = bytearray(gzip.compress(data))
    raw[-8] ^= 0x01  # the CRC-32 of the gzip trailer
    (tmp_path / "crc.fits.gz").write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="crc.fits.gz"):
        xdl4.open_dataset(tmp_path / "crc.fits.gz")


def test_mangled_header_card(small_files, tmp_path):
    """astropy's VerifyError (an unparsable card) becomes a FormatError naming the HDU."""
    raw = bytearray(small_files["map.fits"].read_bytes())
    i = raw.index(b"CDELT1  =")
    raw[i + 10:i + 30] = b"'abc   0.1e   xx/   "
    (tmp_path / "card.fits").write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=r"card\.fits \[HDU COUNTS\].*CDELT1"):
        xdl4.open_dataset(tmp_path / "card.fits", verify=False)


def test_errors_pickle_across_processes(tmp_path):
    with pytest.raises(DL4Error) as info:
        xdl4.open_dataset(tmp_path / "nope.fits")
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is type(info.value) and str(again) == str(info.value)


def test_xarray_backend_entry_point_is_typed(small_files, tmp_path):
    bad = tmp_path / "map.fits"
    bad.write_bytes(small_files["map.fits"].read_bytes()[:5000])
    with pytest.raises(FormatError, match="map.fits"):
        xr.open_dataset(bad, engine="gadf")


# --------------------------------------------------------------------------------------
# checksums


def test_fits_checksum_mismatch_and_verify_false(small_files, tmp_path):
    """A flipped bit in the data (not a header) of a file xdl4 wrote: CHECKSUM catches it
    (astropy would load the wrong number); verify=False reads the changed value."""
    src = small_files["map.fits"]
    with fits.open(src) as hdul:
        start = hdul["COUNTS"].fileinfo()["datLoc"]
    raw = bytearray(src.read_bytes())
    raw[start + 8 * 7 + 1] ^= 0x01  # counts[0, 0, 7]
    (tmp_path / "flip.fits").write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=r"flip\.fits \[HDU COUNTS\]: CHECKSUM does not match"):
        xdl4.open_dataset(tmp_path / "flip.fits")
    changed = xdl4.open_dataset(tmp_path / "flip.fits", verify=False)
    assert float(changed.counts[0, 0, 7]) != float(xdl4.open_dataset(src).counts[0, 0, 7])


def test_fits_datasum_only(small_files, tmp_path):
    """A file with DATASUM but no CHECKSUM card: the data sum alone is checked."""
    def edit(hdus):
        for h in hdus:
            h.header.remove("CHECKSUM", ignore_missing=True)
            h.header["DATASUM"] = "12345"
        return hdus

    path = _edit_fits(small_files["map.fits"], tmp_path / "ds.fits", None, edit, checksum=False)
    with pytest.raises(FormatError, match="DATASUM does not match"):
        xdl4.open_dataset(path)


def test_edited_without_updating_checksum(small_files, tmp_path):
    """An astropy edit that keeps the stale CHECKSUM is reported, with the way out."""
    path = _edit_fits(small_files["map.fits"], tmp_path / "stale.fits", "COUNTS",
                      lambda h: h.header.set("OBSERVER", "me"), checksum=False)
    with pytest.raises(FormatError, match="verify=False"):
        xdl4.open_dataset(path)
    assert xdl4.open_dataset(path, verify=False).dl4.kind == "map"


def test_netcdf_corrupt_array_is_typed_and_names_the_variable(small_files, tmp_path):
    """Fletcher-32 catches a flipped data byte; the error names the variable, also when the
    data is read lazily (long after opening)."""
    src = small_files["map.nc"]
    ds = xdl4.open_dataset(src)
    needle = np.ascontiguousarray(ds.exposure.values).tobytes()[8 * 40: 8 * 48]
    _flip(src, tmp_path / "x.nc", needle, 3)
    lazy = xdl4.open_dataset(tmp_path / "x.nc")  # opens: the data is read on access
    with pytest.raises(FormatError, match=r"x\.nc \[variable exposure\]"):
        lazy.exposure.values  # noqa: B018
    with pytest.raises(FormatError, match=r"x\.nc \[variable exposure\]"):
        xdl4.open_dataset(tmp_path / "x.nc", chunks={}).exposure.compute()


def test_netcdf_scalar_crc(small_files, tmp_path):
    """Scalars are not covered by HDF5's Fletcher-32: the xdl4_checksums attribute is."""
    src = small_files["map.nc"]
    _flip(src, tmp_path / "s.nc", np.float64(3600.0).tobytes(), 5)  # livetime
    with pytest.raises(FormatError, match=r"s\.nc \[variable livetime\].*xdl4_checksums"):
        xdl4.open_dataset(tmp_path / "s.nc").load()
    assert float(xdl4.open_dataset(tmp_path / "s.nc", verify=False).livetime) != 3600.0


def test_netcdf_unallocated_chunk_reads_fill_values(small_files, tmp_path):
    """A damaged chunk index (B-tree key) makes HDF5 return fill values (NaN) without an
    error and without Fletcher-32 noticing: the variable's CRC-32 does."""
    raw = bytearray(small_files["map.nc"].read_bytes())
    ref = xdl4.open_dataset(small_files["map.nc"]).load()
    hits, start = 0, 0
    while (start := raw.find(b"TREE", start + 1)) > 0:
        bad = bytearray(raw)
        bad[start + 40] ^= 0xCE  # in the first chunk key
        (tmp_path / "t.nc").write_bytes(bytes(bad))
        try:
            got = xdl4.open_dataset(tmp_path / "t.nc").load()
        except FormatError:
            hits += 1
            continue
        xr.testing.assert_identical(got, ref)
    assert hits


def test_netcdf_garbage(tmp_path):
    (tmp_path / "g.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 3000)
    with pytest.raises(FormatError, match="g.nc.*not a readable NetCDF"):
        xdl4.open_dataset(tmp_path / "g.nc")


# --------------------------------------------------------------------------------------
# what a reader cannot represent


@pytest.mark.parametrize("ctype", [("FOO", "BAR"), ("RA---FOO", "DEC--FOO"),
                                   ("ELON-CAR", "ELAT-CAR"), ("RA---CAR", "GLAT-CAR")])
def test_non_celestial_or_unknown_projection(small_files, tmp_path, ctype):
    def edit(h):
        h.header["CTYPE1"], h.header["CTYPE2"] = ctype

    path = _edit_fits(small_files["map.fits"], tmp_path / "wcs.fits", "COUNTS", edit)
    with pytest.raises(FormatError, match=r"wcs\.fits \[HDU COUNTS\].*(CTYPE|WCS)"):
        xdl4.open_dataset(path)


def test_unknown_unit(small_files, tmp_path):
    path = _edit_fits(small_files["map.fits"], tmp_path / "u.fits", "EXPOSURE",
                      lambda h: h.header.set("BUNIT", "furlong fortnight"))
    with pytest.raises(FormatError, match=r"\[HDU EXPOSURE\].*cannot parse unit"):
        xdl4.open_dataset(path)


def test_missing_bands_hdu(small_files, tmp_path):
    path = _edit_fits(small_files["map.fits"], tmp_path / "b.fits", None,
                      lambda hdus: [h for h in hdus if h.name != "BACKGROUND_BANDS"])
    with pytest.raises(FormatError, match=r"\[HDU BACKGROUND\].*BACKGROUND_BANDS"):
        xdl4.open_dataset(path)


def test_unread_hdu_warns(small_files, tmp_path):
    path = _edit_fits(small_files["map.fits"], tmp_path / "extra.fits", None,
                      lambda hdus: [*hdus, fits.ImageHDU(np.zeros(3), name="MY_NOTES")])
    with pytest.warns(DL4Warning, match=r"extra\.fits.*MY_NOTES"):
        ds = xdl4.open_dataset(path)
    assert ds.attrs["fits_unread_hdus"] == "MY_NOTES"


def test_healpix(small_files, tmp_path):
    path = _edit_fits(small_files["map.fits"], tmp_path / "hpx.fits", "COUNTS",
                      lambda h: h.header.set("PIXTYPE", "HEALPIX"))
    with pytest.raises(FormatError, match="HEALPix"):
        xdl4.open_dataset(path)


def test_ogip_missing_arf(small_files, tmp_path, copy_ogip):
    pha = copy_ogip(small_files["pha.fits"], tmp_path)
    companion_paths(pha)["arf"].unlink()
    with pytest.raises(DL4FileNotFoundError, match=r"pha\.fits \[HDU SPECTRUM\]: ANCRFILE"):
        xdl4.open_dataset(pha)


def test_ogip_missing_bkg(small_files, tmp_path, copy_ogip):
    pha = copy_ogip(small_files["pha.fits"], tmp_path)
    companion_paths(pha)["bkg"].unlink()
    with pytest.raises(DL4FileNotFoundError, match="BACKFILE"):
        xdl4.open_dataset(pha)


def test_ogip_rmf_ebounds_differ(small_files, tmp_path, copy_ogip):
    """An RMF whose EBOUNDS are 10x the PHA's is a response for another spectrum."""
    pha = copy_ogip(small_files["pha.fits"], tmp_path)
    rmf = companion_paths(pha)["rmf"]

    def edit(h):
        h.data["E_MIN"] *= 10
        h.data["E_MAX"] *= 10

    _edit_fits(rmf, rmf, "EBOUNDS", edit)
    with pytest.raises(FormatError, match=r"pha_rmf\.fits \[HDU EBOUNDS\].*differ"):
        xdl4.open_dataset(pha)


def test_ogip_rmf_ebounds_in_other_unit_accepted(small_files, tmp_path, copy_ogip):
    pha = copy_ogip(small_files["pha.fits"], tmp_path)
    rmf = companion_paths(pha)["rmf"]

    def edit(h):
        h.data["E_MIN"] *= 1e9
        h.data["E_MAX"] *= 1e9
        h.columns["E_MIN"].unit = h.columns["E_MAX"].unit = "keV"

    _edit_fits(rmf, rmf, "EBOUNDS", edit)
    xr.testing.assert_identical(xdl4.open_dataset(pha), xdl4.open_dataset(small_files["pha.fits"]))


def test_ogip_bkg_bins_differ(small_files, tmp_path, copy_ogip):
    pha = copy_ogip(small_files["pha.fits"], tmp_path)
    bkg = companion_paths(pha)["bkg"]
    _edit_fits(bkg, bkg, "EBOUNDS", lambda h: h.data["E_MAX"].__imul__(1.5))
    with pytest.raises(FormatError, match=r"pha_bkg\.fits \[HDU EBOUNDS\]"):
        xdl4.open_dataset(pha)


def test_ogip_extra_column_warns(small_files, tmp_path, copy_ogip):
    pha = copy_ogip(small_files["pha.fits"], tmp_path)

    def edit(hdus):
        spec = next(h for h in hdus if h.name == "SPECTRUM")
        cols = spec.columns + fits.ColDefs([fits.Column("STAT_ERR", "D",
                                                        array=np.ones(len(spec.data)))])
        new = fits.BinTableHDU.from_columns(cols, header=spec.header, name="SPECTRUM")
        return [new if h is spec else h for h in hdus]

    _edit_fits(pha, pha, None, edit)
    with pytest.warns(DL4Warning, match="STAT_ERR"):
        xdl4.open_dataset(pha)


def test_ogip_missing_exposure_keyword(small_files, tmp_path, copy_ogip):
    pha = copy_ogip(small_files["pha.fits"], tmp_path)
    _edit_fits(pha, pha, "SPECTRUM", lambda h: h.header.remove("EXPOSURE"))
    with pytest.raises(FormatError, match=r"\[HDU SPECTRUM\].*EXPOSURE"):
        xdl4.open_dataset(pha)


def test_ogip_no_counts_column(small_files, tmp_path, copy_ogip):
    pha = copy_ogip(small_files["pha.fits"], tmp_path)

    def edit(hdus):
        spec = next(h for h in hdus if h.name == "SPECTRUM")
        cols = fits.ColDefs([c for c in spec.columns if c.name != "COUNTS"])
        new = fits.BinTableHDU.from_columns(cols, header=spec.header, name="SPECTRUM")
        return [new if h is spec else h for h in hdus]

    _edit_fits(pha, pha, None, edit)
    with pytest.raises(FormatError, match="missing column COUNTS"):
        xdl4.open_dataset(pha)


def test_ecsv_errors(tmp_path):
    with pytest.raises(DL4FileNotFoundError):
        xdl4.open_dataset(tmp_path / "fp.ecsv")
    (tmp_path / "fp.ecsv").write_text("# %ECSV 1.0\n# ---\nthis is : not [ yaml\n")
    with pytest.raises(FormatError, match=r"fp\.ecsv"):
        xdl4.open_dataset(tmp_path / "fp.ecsv")


def test_flux_points_without_table(small_files, tmp_path):
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros(3))]).writeto(tmp_path / "f.fits")
    with pytest.raises(FormatError, match=r"f\.fits"):
        xdl4.open_dataset(tmp_path / "f.fits")


@pytest.mark.parametrize("text, match", [
    ("datasets: [\n", "not valid YAML"),
    ("something: else\n", "no 'datasets' list"),
    ("datasets:\n- name: a\n", "lacks 'filename'"),
    ("datasets:\n- name: a\n  filename: x.fits\n- name: a\n  filename: y.fits\n", "twice"),
    ("datasets:\n- just a string\n", "not a mapping"),
])
def test_datasets_index_errors(tmp_path, text, match):
    (tmp_path / "index.yaml").write_text(text)
    with pytest.raises(FormatError, match=match):
        open_datasets(tmp_path / "index.yaml")


def test_datasets_index_missing_entry_file(tmp_path):
    (tmp_path / "index.yaml").write_text("datasets:\n- name: a\n  filename: gone.fits\n")
    with pytest.raises(DL4FileNotFoundError, match=r"index\.yaml: dataset 'a'.*gone\.fits"):
        open_datasets(tmp_path / "index.yaml")
