"""Plots of profiles and contours (matplotlib imported lazily)."""

from __future__ import annotations

import numpy as np
import xarray as xr


def plot_profile(profile: xr.Dataset, ax=None, **kwargs):
    """Plot Delta stat of a :func:`stat_profile` result; returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    name = profile.attrs["parameter"]
    stat = profile["stat"].values
    ax.plot(profile[name].values, stat - np.nanmin(stat), **kwargs)
    unit = profile[name].attrs.get("units", "")
    ax.set_xlabel(f"{name} [{unit}]" if unit else name)
    ax.set_ylabel("Delta stat")
    return ax


def plot_contour(contour: xr.Dataset, ax=None, **kwargs):
    """Plot a closed :func:`stat_contour` and its best fit; returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    x, y = contour.attrs["x"], contour.attrs["y"]
    xs, ys = contour[x].values, contour[y].values
    kwargs.setdefault("label", f"{contour.attrs['cl']:.1%} (2 dof)")
    (line,) = ax.plot(np.append(xs, xs[:1]), np.append(ys, ys[:1]), **kwargs)
    ax.plot([contour.attrs["x_best"]], [contour.attrs["y_best"]], "+", color=line.get_color())
    ax.set_xlabel(f"{x} [{contour[x].attrs['units']}]" if contour[x].attrs["units"] else x)
    ax.set_ylabel(f"{y} [{contour[y].attrs['units']}]" if contour[y].attrs["units"] else y)
    return ax
