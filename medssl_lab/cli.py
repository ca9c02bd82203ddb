"""The ``medssl-lab`` command. Without a subcommand it runs ``data``: find the data and show the pool."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medssl_lab.config import resolve_device
from medssl_lab.data.pool import DEFAULT_SOURCES, build_pool, pool_summary
from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import MedsslError
from medssl_lab.profiles import PROFILES
from medssl_lab.runconfig import DataSettings, Section, resolve

if TYPE_CHECKING:
    from medssl_lab.pretrain import PretrainConfig
    from medssl_lab.reproduce import ReproduceConfig

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]  # what add_subparsers returns


def load_pool(
    data_dir: str | None, size: int, synthetic: bool = False, sources: list[str] | None = None
) -> tuple[ImageSet, bool]:
    """The real pool (``sources``: data set names and pool stores; default MedNIST + PneumoniaMNIST), or synthetic
    phantoms only when asked for.

    Returns (pool, is_real).
    """
    if not synthetic:
        return build_pool(sources or DEFAULT_SOURCES, size=size, data_dir=data_dir), True
    print("WARNING: SYNTHETIC phantoms (not medical data), as --synthetic asked.", file=sys.stderr)
    ph = make_phantoms(512, size, seed=0)
    n = len(ph.images)
    return ImageSet(
        ph.images,
        ph.labels,
        ph.class_names,
        "multi-class",
        np.full(n, "CT (synthetic)", object),
        np.full(n, "phantoms", object),
    ), False


def cmd_data(args: argparse.Namespace) -> int:
    from medssl_lab.viz import plot_pool_overview

    pool, real = load_pool(args.data_dir, args.size, args.synthetic, args.source)
    print(
        f"Pretraining pool: {len(pool)} images at {args.size}x{args.size} px, "
        f"{pool.images.nbytes / 1e6:.1f} MB as uint8"
    )
    print(f"{'source':<16}{'modality':<16}{'images':>8}")
    for source, modality, count in pool_summary(pool):
        print(f"{source:<16}{modality:<16}{count:>8}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig = plot_pool_overview(pool, title="pretraining pool" if real else "SYNTHETIC phantoms (real data unavailable)")
    fig.savefig(out / "pool_overview.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out / 'pool_overview.png'}")
    return 0


def pretrain_section() -> Section:
    """What a pretraining ``config.yaml`` may hold: PretrainConfig's fields (``augment``: MultiCropConfig's, but the
    views' counts and sizes, which are PretrainConfig's own), and ``data``."""
    from medssl_lab.augment import MultiCropConfig
    from medssl_lab.pretrain import PretrainConfig

    views = ("n_global", "n_local", "global_size", "local_size")
    augment = Section(MultiCropConfig, exclude=views, note=f"{', '.join(views)} are top-level keys")
    return Section(PretrainConfig, {"augment": augment, "data": Section(DataSettings)})


def pretrain_settings(args: argparse.Namespace) -> tuple[PretrainConfig, DataSettings]:
    """The run ``pretrain`` was asked for: profile defaults < ``--config`` < flags < ``--set``."""
    from medssl_lab.pretrain import PretrainConfig

    flags: dict[str, Any] = {
        name: getattr(args, name)
        for name in ("profile", "epochs", "max_steps", "batch_size", "method", "device", "seed", "backbone")
    }
    flags["data"] = {"sources": args.source, "data_dir": args.data_dir, "synthetic": args.synthetic}
    settings = resolve(pretrain_section(), args.config, flags, args.set)
    data = DataSettings(**settings.pop("data", {}))
    return PretrainConfig.for_profile(settings.pop("profile", "cpu"), **settings), data


def cmd_pretrain(args: argparse.Namespace) -> int:
    from medssl_lab.pretrain import process_group

    config, data = pretrain_settings(args)
    resolve_device(config.device)  # a wrong device fails here, before the data is loaded
    with process_group(config.device) as rank:
        _pretrain_and_report(config, data, args, rank)  # the trainer lives in this call only, so the group is left
    return 0


def _pretrain_and_report(config: PretrainConfig, data: DataSettings, args: argparse.Namespace, rank: int) -> None:
    from medssl_lab.pretrain import pretrain

    sources = list(data.sources or DEFAULT_SOURCES)
    pool, real = load_pool(data.data_dir, config.image_size, data.synthetic, sources)
    recorded = {**asdict(data), "sources": sources}  # config.yaml names the default sources too
    trainer = pretrain(config, pool, args.out, resume=not args.restart, progress=rank == 0, data=recorded)
    if rank == 0:
        last = trainer.history.rows[-1] if trainer.history.rows else {}
        print(
            f"{'real pool' if real else 'SYNTHETIC phantoms'}: {len(trainer.pool)} images; {trainer.step} steps; "
            f"loss {last.get('loss_avg', float('nan')):.3f} (ln K = {math.log(config.n_prototypes):.3f}); "
            f"prototype usage {last.get('prototype_usage', float('nan')):.2f}"
        )
        print(f"checkpoint: {Path(args.out) / 'checkpoint.pt'}")


def reproduce_settings(args: argparse.Namespace) -> tuple[ReproduceConfig, DataSettings]:
    """The reproduction ``reproduce`` was asked for: profile defaults < ``--config`` < flags < ``--set``."""
    from medssl_lab.reproduce import ReproduceConfig

    pretraining = replace(pretrain_section(), exclude=("profile", "device"), note="profile and device are top-level")
    sections = {"pretrain_overrides": pretraining, "data": Section(DataSettings, exclude=("synthetic",))}
    flags = {
        "profile": args.profile,
        "device": args.device,
        "seeds": args.seeds,
        "data": {"sources": args.source, "data_dir": args.data_dir},
    }
    settings = resolve(Section(ReproduceConfig, sections), args.config, flags, args.set)
    data = DataSettings(**settings.pop("data", {}))
    return ReproduceConfig.for_profile(settings.pop("profile", "cpu"), **settings), data


def cmd_reproduce(args: argparse.Namespace) -> int:
    from medssl_lab.reproduce import run_protocol

    config, data = reproduce_settings(args)
    summary = run_protocol(config, args.out, data.data_dir, sources=data.sources)
    print(summary.read_text())
    print(f"results.csv, summary.md and plots in {args.out}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from medssl_lab.data.store.ingest import ingest
    from medssl_lab.data.store.rules import Rules, named_window

    rules = Rules(
        size=args.size,
        ct_window=named_window(args.ct_window),
        stride=args.stride,
        allow_burned_in=args.allow_burned_in,
        default_modality=args.modality,
    )
    report = ingest(
        args.sources,
        args.out,
        rules,
        files_per_shard=args.files_per_shard,
        workers=args.workers,
        shards=parse_shard_range(args.shards),
        keep_paths=args.keep_paths,
        data_dir=args.data_dir,
    )
    print("\n".join(report.lines()))
    report.check()  # a store without images, or a run whose every file was rejected, is an error (exit 2)
    print(f"pretrain on it: medssl-lab pretrain --source {args.out} --out runs/own")
    return 0


def parse_shard_range(text: str | None) -> range | None:
    """``"10:20"`` -> shards 10 to 19 (``":20"``, ``"10:"`` too); None for all."""
    if text is None:
        return None
    start, sep, stop = text.partition(":")
    if not sep or not (start or "0").isdigit() or not (stop or "0").isdigit():
        raise ValueError(f"--shards {text!r}: want START:STOP (shard numbers, STOP excluded), e.g. 0:100")
    return range(int(start or 0), int(stop) if stop else sys.maxsize)


def cmd_benchmark(args: argparse.Namespace) -> int:
    from medssl_lab.evaluation.representation import format_table, load_benchmark_data, representation_benchmark
    from medssl_lab.pretrain import load_checkpoint

    load_checkpoint(args.checkpoint)  # fails before the data loads
    data = load_benchmark_data(args.data_dir, split=args.split)
    rows = representation_benchmark(args.checkpoint, data, device=args.device or "auto")
    table = format_table(rows, args.split)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
        print(f"wrote {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from medssl_lab.export import export_encoder
    from medssl_lab.export.encoder import require_tools
    from medssl_lab.pretrain import load_checkpoint

    formats = tuple(args.formats)
    require_tools(formats)
    load_checkpoint(args.run)  # fails before the data loads
    benchmark = None
    if args.benchmark:
        from medssl_lab.evaluation.representation import load_benchmark_data, representation_benchmark

        benchmark = representation_benchmark(args.run, load_benchmark_data(args.data_dir), device=args.device)
    report = export_encoder(args.run, args.out, formats, benchmark)
    for name, size in report.files.items():
        print(f"  {name:22s} {size / 1e3:9.1f} kB")
    checks = ", ".join(f"{fmt} {diff:.1e}" for fmt, diff in report.differences.items())
    print(f"max abs feature difference on {report.n_check_images} real DICOM images: {checks}")
    print(f"wrote {report.out_dir} in {report.seconds:.1f} s; its README.md is the model card")
    return 0


def parse_assignments(pairs: list[str]) -> dict[str, object]:
    """``["train=False", "epochs=2"]`` -> ``{"train": False, "epochs": 2}``; a value that is no literal stays text."""
    import ast

    values: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"--set {pair!r}: want NAME=VALUE, e.g. --set train=False")
        try:
            values[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            values[name] = text
    return values


def cmd_notebooks(args: argparse.Namespace) -> int:
    from medssl_lab.notebooks import run_notebooks

    extra = parse_assignments(args.set)
    try:
        runs = run_notebooks(
            args.out, args.profile, args.data_dir, args.device, args.seed, args.notebooks_dir, args.only, extra=extra
        )
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(runs)} notebooks ran; executed copies and summary.md in {args.out}")
    return 0


def cmd_student(args: argparse.Namespace) -> int:
    from medssl_lab.editions import EditionError, write_student_edition

    try:
        written = write_student_edition(args.out, args.notebooks_dir)
    except (EditionError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"student edition of {len(written)} notebooks in {args.out}; run it with")
    print(f"  medssl-lab notebooks run --notebooks-dir {args.out} --out OUT")
    return 0


def cmd_links(args: argparse.Namespace) -> int:
    from medssl_lab.notebooks import course_links, github_repository, write_course_links

    repository = github_repository(args.repository)
    for name, links in course_links(repository, args.branch).items():
        print(f"{name}\n  Binder: {links['binder']}\n  Colab:  {links['colab']}")
    if args.write:
        changed = write_course_links(repository, args.branch)
        print(f"pointed at {repository}@{args.branch}: " + (", ".join(p.name for p in changed) or "nothing changed"))
    return 0


def cmd_docs_notebooks(args: argparse.Namespace) -> int:
    from medssl_lab.site import copy_executed_notebooks

    written = copy_executed_notebooks(args.run_dir, args.dest)
    print(f"{len(written)} executed notebooks copied, made small, into {written[0].parent}")
    return 0


def cmd_docs_build(args: argparse.Namespace) -> int:
    from medssl_lab.site import build_site

    try:
        out = build_site(args.out, args.source)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"site built, every internal link checked: {Path(out) / 'index.html'}")
    return 0


SOURCE_HELP = (
    "a pool source, repeatable: mednist, a MedMNIST subset (its train split) or a pool store folder "
    "(medssl-lab ingest); default: mednist and pneumoniamnist"
)


DATA_DIR_HELP = "folder with the data sets: pneumoniamnist.npz, MedNIST.tar.gz, ... (default: $MEDSSL_DATA_DIR)"
DEVICE_HELP = "auto, cpu, cuda, cuda:1, ..."
PROFILE_HELP = "the sizes of a profile, for every setting that --config leaves out (default: the file's, else cpu)"
RUN_FILE_TEXT = (
    "The run folder gets config.yaml, every setting of the run: --config FILE runs it again, flags and "
    "--set KEY=VALUE vary it (e.g. {example}). Precedence: profile defaults < --config file < flags < --set."
)


def _add_source_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", action="append", help=SOURCE_HELP)


def _add_config_options(parser: argparse.ArgumentParser, example: str) -> None:
    """``--config FILE`` and ``--set KEY=VALUE``: a run's settings from a file, and overrides on top of it."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the settings of a run from a YAML file: a run folder's config.yaml repeats that run; "
        "precedence: profile defaults < this file < flags < --set",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override one setting, repeatable: the value is read as YAML, a dotted key goes into a section "
        f"(e.g. {example} --set data.data_dir=/data); over the file and the flags",
    )


def _add_data_command(sub: Subparsers) -> None:
    """``data``: find the data and show the pool (the default job)."""
    data = sub.add_parser("data", help="find the data and show what the pretraining pool holds")
    data.add_argument(
        "--data-dir", default=None, help="folder with pneumoniamnist.npz and MedNIST.tar.gz (else $MEDSSL_DATA_DIR)"
    )
    data.add_argument("--size", type=int, default=32, help="pool image size in pixels")
    data.add_argument("--out", default="outputs", help="folder for the overview plot")
    data.add_argument("--synthetic", action="store_true", help="show synthetic phantoms instead (offline demo)")
    _add_source_option(data)
    data.set_defaults(func=cmd_data)


def _add_pretrain_command(sub: Subparsers) -> None:
    """``pretrain``: SwAV or SimCLR pretraining on the pool."""
    pre = sub.add_parser(
        "pretrain",
        help="SwAV (or SimCLR) pretraining on the pool; torchrun for several processes",
        description="SwAV (or SimCLR) pretraining on the pool. " + RUN_FILE_TEXT.format(example="--set lr=0.003"),
    )
    pre.add_argument("--profile", choices=PROFILES, help=PROFILE_HELP)
    pre.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    pre.add_argument("--out", default="outputs/pretrain", help="folder for checkpoint.pt, history.csv and config.yaml")
    pre.add_argument("--epochs", type=int, help="passes over the pool")
    pre.add_argument("--max-steps", type=int, help="stop after this many steps (smoke runs, tests)")
    pre.add_argument("--batch-size", type=int, help="the global batch (split across processes)")
    pre.add_argument("--method", choices=("swav", "simclr"), help="the SSL method (simclr: the contrastive baseline)")
    pre.add_argument("--backbone", help="the network: resnet_small, resnet18, ... (medssl_lab.models.BACKBONES)")
    pre.add_argument("--device", help=DEVICE_HELP)
    pre.add_argument("--seed", type=int, help="seed of the weights, the batch order and the views")
    pre.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    _add_source_option(pre)
    pre.add_argument(
        "--synthetic",
        action="store_true",
        default=None,
        help="pretrain on synthetic phantoms (offline demo, not medical data)",
    )
    _add_config_options(pre, "--set lr=0.003")
    pre.set_defaults(func=cmd_pretrain)


def _add_reproduce_command(sub: Subparsers) -> None:
    """``reproduce``: the paper in miniature."""
    rep = sub.add_parser(
        "reproduce",
        help="the paper in miniature: pretrain, then scratch/linear/finetune/hybrid arms",
        description="The paper in miniature: pretrain, then scratch/linear/finetune/hybrid arms. "
        + RUN_FILE_TEXT.format(example="--set steps=600 --set pretrain_overrides.lr=0.003"),
    )
    rep.add_argument("--profile", choices=PROFILES, help=PROFILE_HELP)
    rep.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    rep.add_argument(
        "--out", default="outputs/reproduce", help="folder for config.yaml, pretrain/, runs/, the tables and plots"
    )
    rep.add_argument("--device", default=None, help=DEVICE_HELP)
    rep.add_argument("--seeds", type=int, nargs="+", help="downstream seeds (default: 0 1 2; smoke: 0)")
    _add_source_option(rep)
    _add_config_options(rep, "--set steps=600")
    rep.set_defaults(func=cmd_reproduce)


def _add_ingest_command(sub: Subparsers) -> None:
    """``ingest``: your own images into a pool store."""
    ing = sub.add_parser(
        "ingest", help="your own images (DICOM trees, image folders, MedMNIST .npz, MedNIST) into a pool store"
    )
    ing.add_argument(
        "sources",
        nargs="+",
        help="folders, files, or data set names (mednist, a MedMNIST subset); NAME=SOURCE tags its images NAME",
    )
    ing.add_argument("--out", required=True, help="the store folder (made when new, continued when it exists)")
    ing.add_argument("--size", type=int, default=64, help="image size in the store, px (pretraining resizes)")
    ing.add_argument("--files-per-shard", type=int, default=1000, help="source files per shard (the unit of work)")
    ing.add_argument("--workers", type=int, help="decoding processes (default: the CPUs available)")
    ing.add_argument("--shards", help="only shards START:STOP of the plan (split one ingest across machines)")
    ing.add_argument("--ct-window", default="abdomen", help="HU window for CT: a preset name or CENTER,WIDTH")
    ing.add_argument("--stride", type=int, default=1, help="keep every STRIDE-th frame of a multi-frame file")
    ing.add_argument("--modality", default="unknown", help="the modality tag of plain image files")
    ing.add_argument("--keep-paths", action="store_true", help="record file paths (default: salted keys only)")
    ing.add_argument(
        "--allow-burned-in", action="store_true", help="keep files flagged BurnedInAnnotation=YES (skipped by default)"
    )
    ing.add_argument("--data-dir", default=None, help="where the data set names are found")
    ing.set_defaults(func=cmd_ingest)


def _add_benchmark_command(sub: Subparsers) -> None:
    """``benchmark``: the frozen-feature benchmark of a checkpoint."""
    bench = sub.add_parser(
        "benchmark", help="frozen-feature benchmark of a checkpoint beside random init and raw pixels"
    )
    bench.add_argument("checkpoint", help="checkpoint.pt or its run folder")
    bench.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    bench.add_argument(
        "--split",
        choices=("val", "test"),
        default="val",
        help="val to choose recipes on; test only for the final report",
    )
    bench.add_argument("--device", default=None, help=DEVICE_HELP)
    bench.add_argument("--out", default=None, help="also write the table to this Markdown file")
    bench.set_defaults(func=cmd_benchmark)


def _add_export_command(sub: Subparsers) -> None:
    """``export``: the encoder as safetensors + config.json, TorchScript and ONNX, with a model card."""
    from medssl_lab.export import FORMATS

    exp = sub.add_parser(
        "export", help="the encoder as safetensors + config.json (plain MONAI), TorchScript and ONNX, with a model card"
    )
    exp.add_argument("run", help="a pretraining run folder or its checkpoint.pt")
    exp.add_argument("--out", required=True, help="folder to write into (created; files replaced only when checked)")
    exp.add_argument(
        "--formats", nargs="+", choices=FORMATS, default=list(FORMATS), help="formats to write (default: all)"
    )
    exp.add_argument(
        "--benchmark",
        action="store_true",
        help="also run the frozen-feature benchmark (validation splits, real data) and put it in the model card",
    )
    exp.add_argument("--data-dir", default=None, help="data folder for --benchmark (default: MEDSSL_DATA_DIR)")
    exp.add_argument("--device", default="auto", help="device for --benchmark: auto, cpu, cuda, cuda:1, ...")
    exp.set_defaults(func=cmd_export)


def _add_notebooks_command(sub: Subparsers) -> None:
    """``notebooks run | student | links``: the notebook course."""
    nbs = sub.add_parser("notebooks", help="the notebook course")
    nbs_sub = nbs.add_subparsers(dest="action", required=True)
    run = nbs_sub.add_parser("run", help="execute every notebook in order with papermill")
    run.add_argument("--profile", choices=PROFILES, default="smoke", help="the sizes of every notebook's runs")
    run.add_argument("--out", default="outputs/notebooks", help="folder for executed notebooks, results, summary.md")
    run.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    run.add_argument("--device", default="auto", help=DEVICE_HELP)
    run.add_argument("--seed", type=int, default=0, help="the notebooks' seed")
    run.add_argument("--notebooks-dir", default=None, help="default: the repository's notebooks/")
    run.add_argument("--only", nargs="*", help="run only notebooks whose names start with these prefixes, e.g. 00 01")
    run.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="another parameter, e.g. --set train=False"
    )
    run.set_defaults(func=cmd_notebooks)
    student = nbs_sub.add_parser(
        "student", help="write the student edition: solutions replaced by stubs, model answers by prompts"
    )
    student.add_argument("--out", required=True, help="folder for the student's notebooks")
    student.add_argument("--notebooks-dir", default=None, help="the teacher's notebooks (default: the repository's)")
    student.set_defaults(func=cmd_student)
    links = nbs_sub.add_parser("links", help="Binder and Colab links of the course in a GitHub repository")
    links.add_argument("repository", nargs="?", help="OWNER/NAME or a GitHub address (default: git remote origin)")
    links.add_argument("--branch", default="main", help="the branch the links open")
    links.add_argument(
        "--write", action="store_true", help="put the badges into README.md and the address into each install cell"
    )
    links.set_defaults(func=cmd_links)


def _add_docs_command(sub: Subparsers) -> None:
    """``docs build | notebooks``: the course as a website."""
    docs = sub.add_parser("docs", help="the course as a website (Sphinx): executed notebooks in, the site built")
    docs_sub = docs.add_subparsers(dest="action", required=True)
    docs_build = docs_sub.add_parser("build", help="build the site with -W, then check every internal link")
    docs_build.add_argument("--out", required=True, help="folder for the HTML site")
    docs_build.add_argument("--source", default=None, help="the site's source (default: the repository's docs/)")
    docs_build.set_defaults(func=cmd_docs_build)
    docs_nbs = docs_sub.add_parser(
        "notebooks", help="copy the executed notebooks of `notebooks run --out RUN_DIR` into docs/course, made small"
    )
    docs_nbs.add_argument("--from", dest="run_dir", required=True, help="the --out folder of `notebooks run`")
    docs_nbs.add_argument("--dest", default=None, help="default: the repository's docs/course")
    docs_nbs.set_defaults(func=cmd_docs_notebooks)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medssl-lab", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    for add_command in (
        _add_data_command,
        _add_pretrain_command,
        _add_reproduce_command,
        _add_ingest_command,
        _add_benchmark_command,
        _add_export_command,
        _add_notebooks_command,
        _add_docs_command,
    ):
        add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["data", *argv]  # the default job
    args = parser.parse_args(argv)
    try:
        if args.command in ("pretrain", "reproduce", "benchmark", "export"):
            from medssl_lab.threads import configure_threads

            print(configure_threads(), file=sys.stderr)  # before any torch work
        return args.func(args)
    except (MedsslError, ValueError, FileNotFoundError, PermissionError) as exc:  # what a user's input can cause
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
