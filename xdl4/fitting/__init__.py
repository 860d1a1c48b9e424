"""Likelihood fits of DL4 datasets with iminuit: best fit, covariance, profiles, contours.

The statistic is -2 ln L summed over datasets (and over the runs of an ``obs`` dimension).
A sky model applies to every dataset unless its ``datasets_names`` restricts it; a
``FoVBackgroundModel`` applies to its own dataset (or run) only; linked parameters are one
fit parameter. Minuit sees each free parameter as a factor of order one,
``T(value) / scale`` (``scale_method`` scale10 / factor1, ``scale_transform`` lin / log /
sqrt, as gammapy), with bounds carried over. After MIGRAD a HESSE is always run for the
covariance (gammapy keeps MIGRAD's approximate matrix). Initial steps are the parameter
error when set, else 1% of the value (0.01 deg for angles), never a full scale unit.

>>> import numpy as np, xdl4
>>> from xdl4.models import Models, SkyModel, PowerLaw
>>> models = Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="src")])
>>> result = xdl4.fit(xdl4.examples.all_kinds(seed=0)["spectrum_onoff"], models)
>>> result.success, bool(np.isfinite(result.parameters.error.sel(parameter="src.index")))
(True, True)
"""

from __future__ import annotations

from xdl4.errors import FitError
from xdl4.fitting.likelihood import Likelihood
from xdl4.fitting.minuit import fit
from xdl4.fitting.plots import plot_contour, plot_profile
from xdl4.fitting.result import FitResult
from xdl4.fitting.scans import confidence, stat_contour, stat_profile

__all__ = ["FitError", "FitResult", "Likelihood", "confidence", "fit", "plot_contour",
           "plot_profile", "stat_contour", "stat_profile"]
