"""Command line: ``xdl4 demo`` (the main job on the built-in example), ``xdl4 info FILE``,
``xdl4 stack RUN... -o OUT``.

Errors print one line ``xdl4: error: ...`` and exit with status 1 (2 for usage errors),
^C prints ``xdl4: interrupted`` and exits with 130; ``--debug`` shows the traceback.
Outputs are written atomically: an error or ^C leaves no partial file behind.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    """The main job on the built-in example: fit a point source, save, draw."""
    import xdl4
    from xdl4.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    ds = xdl4.examples.map_dataset(seed=args.seed)
    print(f"xdl4 {xdl4.__version__}: built-in example map dataset (seed {args.seed})")
    print(repr(ds.dl4))
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
    from xdl4.files import atomic_write

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
    fig = plt.figure(figsize=(17, 4.6))  # xdl4's sky images: WCS axes, RA to the left
    for i, what in enumerate(("counts", "npred", "sqrt_ts")):
        ax = fig.add_subplot(1, 3, i + 1, projection=ds.dl4.grid.wcs)
        ds.dl4.plot.image(what, ax=ax, models=models, smooth=0.1 if what == "sqrt_ts" else None)
    fig.subplots_adjust(wspace=0.5, left=0.05, right=0.96)
    png = out / "example_fit.png"
    atomic_write(png, lambda tmp: fig.savefig(tmp, dpi=90, format="png"), overwrite=True)
    print(f"wrote {png}")
    return 0


def _info(args: argparse.Namespace) -> int:
    import xdl4

    for path in args.files:
        ds = xdl4.open_dataset(path)
        print(f"{path}:")
        print(repr(ds.dl4))  # the summary a notebook shows
        if args.full:
            print("  gammapy's info_dict:")
            for key, value in ds.dl4.info().items():
                print(f"    {key:16s} {value}")
    return 0


def _stack(args: argparse.Namespace) -> int:
    from xdl4.streaming import stack_files

    models = None
    if args.models:
        from xdl4.models import read_models

        models = read_models(args.models)
    out = stack_files(args.runs, output=args.output, format=args.format,
                      overwrite=args.overwrite, progress=not args.quiet, models=models,
                      allow_duplicates=args.allow_duplicates)
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
    info.add_argument("--full", action="store_true",
                      help="also every field of gammapy's info_dict")
    info.set_defaults(func=_info)
    stk = sub.add_parser("stack", help="stack runs (GADF, OGIP or NetCDF) in bounded memory")
    stk.add_argument("runs", nargs="+", metavar="RUN")
    stk.add_argument("-o", "--output", required=True, help="output file")
    stk.add_argument("--format", choices=("netcdf", "gadf"), default="netcdf")
    stk.add_argument("--overwrite", action="store_true", help="replace an existing output")
    stk.add_argument("--models", help="models YAML whose FoV background models are baked "
                     "into the runs' backgrounds first (as gammapy stacks)")
    stk.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    stk.add_argument("--allow-duplicates", action="store_true",
                     help="stack a run given twice (same file or same dataset name)")
    stk.set_defaults(func=_stack)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    for command in (demo, info, stk):  # also accepted after the command
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks of errors")
    return parser


def _one_line(err: BaseException) -> str:
    """The error as one line: its message (multi-line validation lists joined), prefixed
    with its type when it is not an error xdl4 raises on purpose."""
    from xdl4.errors import DL4Error

    text = "; ".join(part.strip(" -") for part in str(err).splitlines() if part.strip())
    text = text.replace(":;", ":")
    if isinstance(err, DL4Error | OSError):
        return text or type(err).__name__
    return f"{type(err).__name__}: {text} (a bug? rerun with --debug for the traceback)"


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"xdl4: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (``xdl4`` exits with it)."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            if not args.debug:
                warnings.showwarning = _warning_line
            return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print("xdl4: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - one line for the user, --debug for more
        if args.debug:
            traceback.print_exc()
        print(f"xdl4: error: {_one_line(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
