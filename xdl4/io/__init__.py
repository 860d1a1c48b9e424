"""Readers and writers: NetCDF (native), GADF FITS, OGIP, flux-point tables."""
