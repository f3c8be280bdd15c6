"""``fishbench {run,plan,report,compare,list,speed}`` (or ``python -m bench ...``): each subcommand parses, calls one library function, prints.

Bad input ends with a one-line ``error: ...`` and exit status 2, as does a results folder
that another ``bench run`` holds; a full disk under the dataset cache, or a record that cannot
be written, with one line and 1; an interrupt with 130. ``run`` exits 1 when any of its runs is
not ok (failed, diverged, timeout), after writing the records (and the report, if asked). Output
into a pipe its reader closed (``fishbench list | head -1``) ends quietly with 141, as a shell
reports any tool that SIGPIPE ended (``main``).
Warnings (a record that cannot be read, say) print as one ``warning: ...`` line each.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path

from bench import __version__, config, environment, imports
from bench.data import cache, kinds
from bench.files import check_name_lengths
from bench.records import lock
from bench.records.results import Results
from bench.spec import TABLE4_MODELS

DEFAULT_RESULTS = Path("results")
EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
EXIT_BROKEN_PIPE = 128 + 13  # 128 + SIGPIPE: what a shell shows for `cat big | head -1`'s cat
ABOUT = """\
fishbench trains each model of a profile N times per dataset, records every
run (resumable), and reports how FishNet compares with an MLP, a CNN and
MobileNet: Table 4 of the FishNet student report with 95 % CIs, and a verdict
against each of the report's values and claims."""
EPILOG = """\
examples:
  %(prog)s run                        # the quick profile, minutes
  %(prog)s plan --profile table4-cpu  # what would run, and how long
  %(prog)s run --profile smoke --set epochs=1 \\
      --set model_options.fishnet55.head=conv
  %(prog)s report --results results/quick  # report.md, CSVs, figures

environment:
  BENCH_DATA_DIR          folder of <name>.npz datasets (else downloaded)
  BENCH_CACHE_DIR         preprocessed arrays (default: ~/.cache/fishbench)
  CUDA_VISIBLE_DEVICES    the GPUs runs may use (empty: the CPU only)
  TMPDIR                  where the GPU locks are kept (fishbench-gpus/)
  TF_NUM_INTRAOP_THREADS  threads of `speed` without --threads

`%(prog)s COMMAND --help` tells more; README.md is the guide."""


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_shape(text: str) -> tuple[int, int, int]:
    """'56x56x3' -> (56, 56, 3)."""
    try:
        height, width, channels = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input shape must be HxWxC, e.g. 56x56x3. Received: {text!r}") from None
    return height, width, channels


# ---------------------------------------------------------------- subcommands


class Deprecated(argparse.Action):
    """An old spelling of a flag, left out of the help: it still sets the flag's value, and warns."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        warnings.warn(f"{option_string} is deprecated; it is now {self.new}, which means the same", FutureWarning,
                      stacklevel=2)
        setattr(namespace, self.dest, values)


def _profile(args) -> config.Profile:
    overrides = {
        "run.models": args.models, "run.datasets": args.datasets, "run.repeats": args.repeats,
        "run.epochs": args.epochs, "run.batch_size": args.batch_size, "run.imports": args.imports,
        "run.tensorboard": args.tensorboard or None, "run.save_weights": args.save_weights or None,
    }
    return config.load_profile(args.profile, overrides, args.set)


def _results(args, profile: config.Profile) -> Path:
    if args.results:
        return check_name_lengths(args.results, "--results")
    return DEFAULT_RESULTS / (profile.name + ("" if args.speedups else "-no-speedups"))


def cmd_run(args) -> int:
    from bench.run import devices, runner, stopping  # deferred for start-up time: pandas, joblib

    profile = _profile(args)
    rule = stopping.rule_from_flags(args.until_ci, args.max_repeats, profile.run.repeats)
    dispatch = runner.default_dispatch(args.jobs, args.threads, args.backend, args.scheduler,
                                       devices.visible_gpus(), scheduler_file=args.scheduler_file)
    results = _results(args, profile)
    specs = profile.specs(dispatch.threads, speedups=args.speedups)
    with lock.hold(results):  # the folder checked and held before its sources are kept (the runner's hold nests)
        chosen = _sources(args, profile, results)
        if rule:
            records = stopping.run_until(specs, results, dispatch, rule, args.retry_failed, chosen=chosen)
        else:
            records = runner.run_benchmark(specs, results, dispatch, args.retry_failed)
    failed = sum(r.status != "ok" for r in records)
    print(f"done: {len(records)} runs this time, {failed} not ok; records in {Results(results).runs}")
    if args.report:
        from bench.report import report  # deferred for start-up time: pandas, matplotlib

        print(report.write_report(results, results))
    return EXIT_FAILED if failed else 0


def _sources(args, profile: config.Profile, results: Path):
    """The published table and claims of ``run`` (``bench.analysis.sources``), kept in the results
    folder when a flag or a user's profile file chose them, for its reports."""
    from bench.analysis import sources  # deferred for start-up time: pandas

    given = {"published": args.published, "claims": args.claims}
    chosen = sources.choose(given, sources.read_kept(results), [sources.Sources(**profile.report)])
    if args.published or args.claims or args.profile.endswith(".toml"):
        sources.keep(results, chosen)
    return chosen


def cmd_plan(args) -> int:
    from bench.run import devices, plan, runner  # deferred for start-up time: pandas, joblib

    profile = _profile(args)
    dispatch = runner.default_dispatch(args.jobs, args.threads, gpus=devices.visible_gpus())
    specs = profile.specs(dispatch.threads, speedups=args.speedups)
    estimate_from = [check_name_lengths(folder, "--estimate-from") for folder in args.estimate_from]
    print(plan.plan_text(specs, _results(args, profile), dispatch, args.retry_failed, estimate_from))
    return 0


def cmd_report(args) -> int:
    from bench.report import report  # deferred for start-up time: pandas, matplotlib

    if args.out and not args.results:
        raise ValueError(f"--out needs --results: one folder's report goes to one place. Received: --out {args.out}")
    for flag, folder in (("--results", args.results), ("--out", args.out)):
        if folder:
            check_name_lengths(folder, flag)
    if (args.published or args.claims) and not args.results:
        raise ValueError("--published and --claims need --results: they judge one folder. "
                         f"Received: --published {args.published} --claims {args.claims}")
    print(report.write_report(args.results, args.out or args.results, args.published, args.claims) if args.results
          else report.write_reports(DEFAULT_RESULTS))
    return 0


def compare_text(lines, a: Path, b: Path) -> str:
    """The cells of two folders side by side (``bench.analysis.compare``), a line each; a row's
    label names its setup where the folders hold more than one."""
    from tabulate import tabulate  # deferred for start-up time: tabulate, as the other commands' imports

    def number(value: float, form: str = ".2f") -> str:
        return "—" if math.isnan(value) else f"{value:{form}}"

    def difference(line) -> str:
        interval = "" if math.isnan(line.ci_low) else f" [{line.ci_low:+.2f}, {line.ci_high:+.2f}]"
        return number(line.difference, "+.2f") + interval

    headers = ["Model", "Dataset", "A: mean (%)", "B: mean (%)", "B − A (pp) [95 % CI]", "Welch p", "n A", "n B"]
    rows = [[line.row, line.dataset, number(line.mean_a), number(line.mean_b), difference(line),
             number(line.p_value, ".3g"), line.n_a, line.n_b] for line in lines]
    table = tabulate(rows, headers=headers, disable_numparse=True, colalign=["left"] * 2 + ["right"] * 6)
    return f"A: {a}\nB: {b}\nFinal test accuracy over each side's ok runs; B − A with Welch's 95 % CI.\n{table}"


def cmd_compare(args) -> int:
    from bench.analysis import compare  # deferred for start-up time: pandas, scipy

    print(compare_text(compare.compare_folders(args.a, args.b, args.models), args.a, args.b))
    return 0


def cmd_list(args) -> int:
    from bench import inventory  # deferred for start-up time: tabulate, and Keras for the counts

    environment.import_tensorflow_quietly()  # its start-up notices would come before the listing
    imports.import_all(args.imports)
    print(inventory.datasets_table())
    print()
    print(inventory.models_table(args.input, args.classes))
    print()
    print(f"profiles: {', '.join(config.profile_names())}")
    return 0


def cmd_speed(args) -> int:
    from bench.speed import measure  # deferred for start-up time; TensorFlow runs in the processes it starts

    check_name_lengths(args.results, "--results")
    measure.main(model_names=args.models, input_shape=args.input, batch_sizes=args.batch_sizes, threads=args.threads,
               baseline=args.baseline, seconds=args.seconds, profile_ops=args.profile_ops, out=args.results)
    return 0


# ---------------------------------------------------------------- parser


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments that choose the runs and where they go, shared by ``run`` and ``plan``."""
    parser.add_argument("--profile", default="quick", help=f"a shipped profile ({', '.join(config.profile_names())}) "
                        "or a path to a .toml file (default: quick)")
    parser.add_argument("--models", type=_csv, help="comma-separated model names (default: the profile's)")
    parser.add_argument("--datasets", type=_csv, help="comma-separated dataset names (" + ", ".join(kinds.NAMES)
                        + ", or one registered with @register_dataset in an --import file) or paths of .npz "
                        "files with x_train, y_train, x_test, y_test")
    parser.add_argument("--repeats", type=int, help="runs per model and dataset (default: the profile's)")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: the profile's)")
    parser.add_argument("--batch-size", type=int, help="images per training step (default: the profile's)")
    parser.add_argument("--jobs", type=int, help="runs at once (default: cores // threads; on a running "
                        "Dask cluster, its workers' threads)")
    parser.add_argument("--threads", type=int, help="TensorFlow threads of each run (default: 1)")
    parser.add_argument("--threads-per-job", dest="threads", type=int, action=Deprecated, new="--threads")
    parser.add_argument("--results", type=Path, help="results folder (default: results/PROFILE, the profile's name)")
    parser.add_argument("--no-speedups", dest="speedups", action="store_false",
                        help="train without the harness's speed-ups, to check they change no result "
                        "(default results: results/PROFILE-no-speedups)")
    parser.add_argument("--retry-failed", action="store_true", help="run again the runs recorded as failed or timeout")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write TensorBoard logs, into RESULTS/tensorboard/ (profile key run.tensorboard)")
    parser.add_argument("--save-weights", action="store_true",
                        help="also keep each run's final weights, RESULTS/weights/*.weights.h5 (run.save_weights)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any profile value, e.g. --set scale_pixels=false --set optimizer.learning_rate=0.01 "
                        "--set model_options.fishnet55.head=conv (a model's option, as [model_options.fishnet55])")
    add_import_argument(parser)


def add_import_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--import", dest="imports", action="append", metavar="FILE_OR_MODULE",
                        help="a .py file (by path) or module (by name) that registers your own models with "
                        "@models.register_model or datasets with @bench.data.register_dataset, imported here and in "
                        "each run's worker (repeatable; default: the profile's [run] imports)")


def add_sources_arguments(parser: argparse.ArgumentParser, note: str) -> None:
    """--published and --claims: what the runs are judged against (docs/own-table.md)."""
    parser.add_argument("--published", metavar="FILE", help="the published table (CSV) the runs are judged against: "
                        "a file, 'table4' (the report's) or 'none' (default: the one the results folder keeps, else "
                        f"the profile's [report] published); {note}; docs/own-table.md")
    parser.add_argument("--claims", metavar="FILE", help="the claims file (TOML) judged on the runs: a file, 'table4' "
                        f"or 'none' (default: as --published, [report] claims); {note}")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``prog`` is the name usage shows (None: the script's, ``fishbench``)."""
    parser = argparse.ArgumentParser(prog=prog, description=ABOUT, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,plan,report,compare,list,speed}")

    run = commands.add_parser("run", help="train every model of a profile N times per dataset; resumable",
                              description="Train every model of a profile N times per dataset, in parallel; "
                              "runs already recorded in RESULTS/runs are skipped, so the same command resumes.")
    add_plan_arguments(run)
    run.add_argument("--backend", choices=("loky", "dask"), default="loky",
                     help="joblib backend: loky processes here (default) or a Dask cluster")
    run.add_argument("--scheduler", help="Dask scheduler address tcp://host:port (default: a LocalCluster on loopback)")
    run.add_argument("--scheduler-file", metavar="FILE", help="or the file a Dask scheduler wrote its address into "
                     "(dask scheduler --scheduler-file FILE, as on SLURM; docs/cluster.md)")
    run.add_argument("--report", action="store_true", help="then write the report into the results folder")
    run.add_argument("--until-ci", type=float, metavar="W",
                     help="after the profile's repeats, add runs in rounds to every model and dataset whose "
                     "accuracy's 95 %% CI half-width is above W percentage points or whose verdict against the "
                     "report is can't tell (needs --max-repeats)")
    run.add_argument("--max-repeats", type=int, metavar="N",
                     help="with --until-ci: the most runs per model and dataset (>= the profile's repeats)")
    add_sources_arguments(run, "used by --until-ci and --report, kept in the results folder (plan has no use for it)")
    run.set_defaults(handler=cmd_run)

    plan = commands.add_parser("plan", help="the runs `run` would start with the same arguments, and their time",
                               description="List the runs that `bench run` with the same arguments would start, "
                               "per model and dataset, with a time estimate from the records already present; "
                               "nothing is trained or written.")
    add_plan_arguments(plan)
    plan.add_argument("--estimate-from", type=Path, action="append", default=[], metavar="DIR",
                      help="also time runs with the records of this results folder (repeatable), "
                      "e.g. results/table4-cpu")
    plan.set_defaults(handler=cmd_plan)

    report = commands.add_parser("report", help="Table 4, statistics and figures from the records",
                                 description="Aggregate the records of RESULTS/runs into report.md, table4.csv, "
                                 "runs.csv and figures, with the published Table 4 beside the measured one.")
    report.add_argument("--results", type=Path,
                        help="results folder to read (default: each folder in results/ that holds runs)")
    report.add_argument("--out", type=Path, help="folder to write into (default: the results folder)")
    add_sources_arguments(report, "kept in the report's folder for its next report")
    report.set_defaults(handler=cmd_report)

    compare = commands.add_parser("compare", help="the same cells of two results folders side by side",
                                  description="Each cell (model, settings, dataset) of results folders A and B: "
                                  "mean final test accuracy in each, B − A with Welch's 95 % CI and p, ok runs in "
                                  "each. A cell is compared only with the cell of exactly its settings.")
    compare.add_argument("a", type=Path, metavar="A", help="results folder A (the baseline), e.g. results/paper")
    compare.add_argument("b", type=Path, metavar="B", help="results folder B, compared with A")
    compare.add_argument("--models", type=_csv, help="comma-separated model names (default: every model of A and B)")
    compare.set_defaults(handler=cmd_compare)

    listing = commands.add_parser("list", help="datasets, models and profiles",
                                  description="Datasets (where each loads from, or why it cannot), registered "
                                  "models (options, parameters and FLOPs at --input), and shipped profiles.")
    listing.add_argument("--input", type=parse_shape, default=(56, 56, 3), help="input shape HxWxC for the counts (default: 56x56x3)")
    listing.add_argument("--classes", type=int, default=10, help="classes for the counts (default: 10)")
    add_import_argument(listing)
    listing.set_defaults(handler=cmd_list)

    speed = commands.add_parser("speed", help="training and inference throughput per model",
                                description="Steady-state images/s per model, FLOPs, achieved GFLOP/s against "
                                "a measured matmul peak, build and first-step time; writes speed.csv.")
    speed.add_argument("--models", type=_csv, default=list(TABLE4_MODELS),
                       help="comma-separated model names (default: the Table 4 models)")
    speed.add_argument("--input", type=parse_shape, default=(56, 56, 3), help="input shape HxWxC (default: 56x56x3)")
    speed.add_argument("--batch-sizes", type=lambda t: [int(x) for x in _csv(t)], default=[32],
                       help="comma-separated batch sizes (default: 32)")
    speed.add_argument("--threads", type=int, help="TensorFlow threads (default: all cores)")
    speed.add_argument("--baseline", action="store_true", help="also time plain Keras model.fit on numpy arrays")
    speed.add_argument("--seconds", type=float, default=20.0, help="timed seconds per measurement (default: 20)")
    speed.add_argument("--profile-ops", action="store_true",
                       help="also trace a few training steps per model and sum the time per op type (ops.csv)")
    speed.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                       help="folder for speed.csv and ops.csv (default: results/)")
    speed.add_argument("--out", dest="results", type=Path, action=Deprecated, new="--results")
    speed.set_defaults(handler=cmd_speed)
    return parser


def _warning_line(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the command line; stdout's reader going away (``| head -1``) ends it with EXIT_BROKEN_PIPE.

    The exit status is a shell's for a tool that SIGPIPE ended, not 0: the output was cut short,
    which a script with ``set -o pipefail`` should see as it would for any other tool. stdout is
    then pointed at /dev/null (the recipe of Python's ``signal`` docs), so the interpreter's last
    flush at exit has nowhere to fail.
    """
    try:
        status = _main(argv, prog)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _main(argv: list[str] | None, prog: str | None) -> int:
    formatwarning, warnings.formatwarning = warnings.formatwarning, _warning_line
    try:
        args = build_parser(prog).parse_args(argv)
        return args.handler(args)
    except (ValueError, kinds.DataUnavailable, lock.Busy) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except cache.CacheFull as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except lock.WriteFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted: finished records are kept; run the same command again to run the missing ones",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        warnings.formatwarning = formatwarning
