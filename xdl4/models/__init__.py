"""Sky-model library of xdl4: parameters, spectral / spatial / temporal / sky models, YAML.

Hot paths (numpy only, current parameter values read as floats):
``SpectralModel.integral_bins(edges_tev)``, ``SpatialModel.integrate_pixels(wcs, shape)``,
``SpatialModel.evaluate_lonlat(lon_deg, lat_deg, frame)``, ``FoVBackgroundModel.evaluate_bins``.
"""

from xdl4.skymath import pixel_solid_angle, pixel_solid_angle_exact

from .checks import check_fit_start, count_fit_bins
from .container import Models, read_models
from .core import REGISTRY, get_model_class
from .parameter import ModelsParameters, Parameter, Parameters
from .sky import (
    FoVBackgroundModel,
    OpaqueSpatialModel,
    OpaqueSpectralModel,
    OpaqueTemporalModel,
    SkyModel,
    TemplateNPredModel,
)
from .spatial import (
    ConstantSpatialModel,
    DiskSpatialModel,
    GaussianSpatialModel,
    GeneralizedGaussianSpatialModel,
    PointSpatialModel,
    Shell2SpatialModel,
    ShellSpatialModel,
    SpatialModel,
    TemplateSpatialModel,
)
from .spectral import (
    BrokenPowerLawSpectralModel,
    CompoundSpectralModel,
    ConstantSpectralModel,
    ExpCutoffPowerLaw3FGLSpectralModel,
    ExpCutoffPowerLawNormSpectralModel,
    ExpCutoffPowerLawSpectralModel,
    GaussianSpectralModel,
    LogParabola2SpectralModel,
    LogParabolaNormSpectralModel,
    LogParabolaSpectralModel,
    PiecewiseNormSpectralModel,
    PowerLaw2SpectralModel,
    PowerLawNormSpectralModel,
    PowerLawSpectralModel,
    ScaleSpectralModel,
    SmoothBrokenPowerLawSpectralModel,
    SpectralModel,
    SuperExpCutoffPowerLaw3FGLSpectralModel,
    SuperExpCutoffPowerLaw4FGLDR3SpectralModel,
    SuperExpCutoffPowerLaw4FGLSpectralModel,
    TemplateSpectralModel,
)
from .temporal import (
    ConstantTemporalModel,
    ExpDecayTemporalModel,
    GaussianTemporalModel,
    GeneralizedGaussianTemporalModel,
    LightCurveTemplateTemporalModel,
    LinearTemporalModel,
    PowerLawTemporalModel,
    SineTemporalModel,
    TemporalModel,
)

# short aliases
PowerLaw = PowerLawSpectralModel
PowerLaw2 = PowerLaw2SpectralModel
PowerLawNorm = PowerLawNormSpectralModel
ExpCutoffPowerLaw = ExpCutoffPowerLawSpectralModel
LogParabola = LogParabolaSpectralModel
LogParabolaNorm = LogParabolaNormSpectralModel
BrokenPowerLaw = BrokenPowerLawSpectralModel
SmoothBrokenPowerLaw = SmoothBrokenPowerLawSpectralModel
SuperExpCutoffPowerLaw4FGLDR3 = SuperExpCutoffPowerLaw4FGLDR3SpectralModel
ConstantSpectral = ConstantSpectralModel
TemplateSpectral = TemplateSpectralModel
PiecewiseNorm = PiecewiseNormSpectralModel
CompoundSpectral = CompoundSpectralModel

__all__ = [
    "BrokenPowerLaw",
    "BrokenPowerLawSpectralModel",
    "CompoundSpectral",
    "CompoundSpectralModel",
    "ConstantSpatialModel",
    "ConstantSpectral",
    "ConstantSpectralModel",
    "ConstantTemporalModel",
    "DiskSpatialModel",
    "ExpCutoffPowerLaw",
    "ExpCutoffPowerLaw3FGLSpectralModel",
    "ExpCutoffPowerLawNormSpectralModel",
    "ExpCutoffPowerLawSpectralModel",
    "ExpDecayTemporalModel",
    "FoVBackgroundModel",
    "GaussianSpatialModel",
    "GaussianSpectralModel",
    "GaussianTemporalModel",
    "GeneralizedGaussianSpatialModel",
    "GeneralizedGaussianTemporalModel",
    "LightCurveTemplateTemporalModel",
    "LinearTemporalModel",
    "LogParabola",
    "LogParabola2SpectralModel",
    "LogParabolaNorm",
    "LogParabolaNormSpectralModel",
    "LogParabolaSpectralModel",
    "Models",
    "ModelsParameters",
    "OpaqueSpatialModel",
    "OpaqueSpectralModel",
    "OpaqueTemporalModel",
    "Parameter",
    "Parameters",
    "PiecewiseNorm",
    "PiecewiseNormSpectralModel",
    "PointSpatialModel",
    "PowerLaw",
    "PowerLaw2",
    "PowerLaw2SpectralModel",
    "PowerLawNorm",
    "PowerLawNormSpectralModel",
    "PowerLawSpectralModel",
    "PowerLawTemporalModel",
    "REGISTRY",
    "ScaleSpectralModel",
    "Shell2SpatialModel",
    "ShellSpatialModel",
    "SineTemporalModel",
    "SkyModel",
    "SmoothBrokenPowerLaw",
    "SmoothBrokenPowerLawSpectralModel",
    "SpatialModel",
    "SpectralModel",
    "SuperExpCutoffPowerLaw3FGLSpectralModel",
    "SuperExpCutoffPowerLaw4FGLDR3",
    "SuperExpCutoffPowerLaw4FGLDR3SpectralModel",
    "SuperExpCutoffPowerLaw4FGLSpectralModel",
    "TemplateNPredModel",
    "TemplateSpatialModel",
    "TemplateSpectral",
    "TemplateSpectralModel",
    "TemporalModel",
    "__all__",
    "check_fit_start",
    "count_fit_bins",
    "get_model_class",
    "pixel_solid_angle",
    "pixel_solid_angle_exact",
    "read_models",
]
