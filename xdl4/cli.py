"""Command line: ``xdl4 demo`` (the main job on the built-in example), ``xdl4 info FILE``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    """The main job on the built-in example: fit a point source, save, draw."""
    import xdl4
    from xdl4.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    ds = xdl4.examples.map_dataset(seed=args.seed)
    print(f"xdl4 {xdl4.__version__}: built-in example map dataset (seed {args.seed})")
    print(ds)
    models = Models([
        SkyModel(PowerLaw(index=2.0, amplitude=1e-11),
                 PointSpatialModel(lon_0=83.7, lat_0=22.0), name="crab"),
        FoVBackgroundModel(ds.dl4.name),
    ])
    result = xdl4.fit(ds, models)
    print("\nfit of a point source with a power law (truth: index 2.5, amplitude 3.8e-11):")
    print(result)
    print("\ninfo:")
    for key, value in ds.dl4.info(models).items():
        print(f"  {key:16s} {value}")
    path = out / "example_map.nc"
    ds.dl4.to_netcdf(path, overwrite=True)
    models.write(out / "example_models.yaml", overwrite=True)
    print(f"\nwrote {path} and {out / 'example_models.yaml'}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no PNG (pip install 'xdl4[plot]')")
        return 0
    image = ds.dl4.to_image()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    image["counts"].squeeze().plot(ax=axes[0], cmap="magma")
    image.dl4.npred(models).squeeze().plot(ax=axes[1], cmap="magma")
    image.dl4.residuals(models, "diff/sqrt(model)").squeeze().plot(
        ax=axes[2], cmap="RdBu_r", vmin=-4, vmax=4)
    for ax, title in zip(axes, ("counts", "npred (best fit)", "residuals / sqrt(npred)"),
                         strict=True):
        ax.set_title(title)
    fig.tight_layout()
    png = out / "example_fit.png"
    fig.savefig(png, dpi=90)
    print(f"wrote {png}")
    return 0


def _info(args: argparse.Namespace) -> int:
    import xdl4

    for path in args.files:
        ds = xdl4.open_dataset(path)
        print(f"{path}: kind {ds.dl4.kind}")
        for key, value in ds.dl4.info().items():
            print(f"  {key:16s} {value}")
    return 0


def _stack(args: argparse.Namespace) -> int:
    from xdl4.streaming import stack_files

    models = None
    if args.models:
        from xdl4.models import read_models

        models = read_models(args.models)
    out = stack_files(args.runs, output=args.output, format=args.format,
                      overwrite=args.overwrite, progress=not args.quiet, models=models)
    print(f"stacked {len(args.runs)} runs (livetime {float(out.livetime):.6g} s) "
          f"into {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xdl4", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the main job on the built-in example")
    demo.add_argument("-o", "--output", default="xdl4-example", help="output folder")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    info = sub.add_parser("info", help="print the summary of DL4 files")
    info.add_argument("files", nargs="+")
    info.set_defaults(func=_info)
    stk = sub.add_parser("stack", help="stack runs (GADF, OGIP or NetCDF) in bounded memory")
    stk.add_argument("runs", nargs="+", metavar="RUN")
    stk.add_argument("-o", "--output", required=True, help="output file")
    stk.add_argument("--format", choices=("netcdf", "gadf"), default="netcdf")
    stk.add_argument("--overwrite", action="store_true", help="replace an existing output")
    stk.add_argument("--models", help="models YAML whose FoV background models are baked "
                     "into the runs' backgrounds first (as gammapy stacks)")
    stk.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    stk.set_defaults(func=_stack)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
