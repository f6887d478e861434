"""Command line: ``iota2 -config file.yaml -scheduler_type localCluster -nb_parallel_tasks 3``.

Other commands: ``iota2 plugins`` (what is registered and where from), ``iota2 config-reference``
(the configuration reference generated from the declared defaults), ``iota2 demo`` (generate the
demo data set and run the classification chain on it), ``iota2 convert-config old.cfg > new.yaml`` (an iota2
``.cfg`` configuration written as YAML, comments kept).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import difflib
import faulthandler
import logging
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

from iota2.core.config import Config, load_config, reference_markdown
from iota2.core.errors import ConfigError, Iota2Error, TaskFailedError
from iota2.core.graph import Graph, TaskStatus
from iota2.core.layout import OutputLayout
from iota2.core.output_folder import (INCOMPLETE_NOTE, PREVIOUS_FINAL, RunLock, check_output_folder,
                                      mark_output_folder, remove_incomplete_note, remove_outputs,
                                      set_aside_previous_products, write_incomplete_note)
from iota2.core.raster import atomic_output
from iota2.core.scheduler import SCHEDULER_TYPES, execute, make_cluster, start_worker_server

LOGGER = logging.getLogger("iota2")


def run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iota2", description="Run an iota2 workflow described by a YAML configuration file.",
        epilog="Other commands: 'iota2 plugins', 'iota2 config-reference', 'iota2 demo', 'iota2 convert-config', "
               "and those of plugins (listed by 'iota2 plugins').")
    parser.add_argument("-config", required=True, help="configuration file: YAML, or iota2's .cfg syntax")
    parser.add_argument("-scheduler_type", default="localCluster", choices=SCHEDULER_TYPES,
                        help="debug (in process), localCluster (dask on this machine), Slurm or PBS")
    parser.add_argument("-nb_parallel_tasks", type=int, default=1, help="tasks run at the same time (dask workers)")
    parser.add_argument("-only_summary", action="store_true",
                        help="print the steps that would run and a plan (tasks, pixels, memory and estimated time per "
                             "step), then stop")
    parser.add_argument("-execution_graph_files", nargs="+", metavar="FILE",
                        help="draw the task graph into these files (.svg, .png, .pdf or .dot; several separated by "
                             "spaces or commas) before the run; with -only_summary, draw it and stop")
    parser.add_argument("-restart", action="store_true", help="resume: skip the tasks a previous run finished")
    parser.add_argument("-no_progress", action="store_true", help="no progress bar")
    return parser


NOT_YET_AVAILABLE = {"i2_vectorization": "the vectorization builder"}
"""iota2's other builders, named with a message of their own until a plugin provides them."""


def select_builders(config: Config, parallel_tasks: int = 1) -> list:
    """Instantiate the builders named in ``builders.builders_class_name``."""
    from iota2.core.plugins import builders

    registry = builders()
    selected = []
    for name in config["builders"]["builders_class_name"]:
        if name not in registry and name in NOT_YET_AVAILABLE:
            raise ConfigError(f"builders.builders_class_name: {name!r} ({NOT_YET_AVAILABLE[name]}) is not available in "
                              f"this version; installed builders: {', '.join(sorted(registry))} ('iota2 plugins' "
                              "lists them)")
        if name not in registry:
            close = difflib.get_close_matches(name, list(registry), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"builders.builders_class_name: unknown builder {name!r}{hint} (installed: "
                              f"{', '.join(sorted(registry))}; 'iota2 plugins' lists them)")
        selected.append(registry[name](config, parallel_tasks))
    return selected


def prepare_run(builders: list, config: Config) -> list[tuple[object, Graph, list[str]]]:
    """Check inputs and build, for each builder, its graph and the groups selected by first/last_step."""
    plans = []
    for builder in builders:
        builder.check_inputs()
        graph = builder.build_graph()
        groups = graph.select_groups(config["chain"].get("first_step"), config["chain"].get("last_step"))
        plans.append((builder, graph, groups))
    return plans


def _name_the_file(config: Config, exc: ConfigError) -> ConfigError:
    """A key checked by a builder: the message names the configuration file."""
    if config.path and config.path not in str(exc):
        return ConfigError(f"{config.path}: {exc}")
    return exc


def _interrupt(signum, frame):  # noqa: ARG001 - signal handler
    """First Ctrl-C: stop the run (cleanly: workers closed, journal kept); later ones are ignored meanwhile."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _write_graph_pictures(paths: list[Path], plans: list[tuple[object, Graph, list[str]]]) -> None:
    """Draw the graphs the scheduler runs (the selected groups of each builder) into ``paths``."""
    if not paths:
        return
    from iota2.core.graph_picture import write_pictures

    write_pictures(paths, [(type(builder).__name__, graph.subgraph(groups)) for builder, graph, groups in plans])
    print(f"iota2: execution graph drawn in {', '.join(str(path) for path in paths)}", file=sys.stderr)


def _print_plan(builder, graph: Graph, groups: list[str], parallel_tasks: int) -> None:
    """Print the plan with costs of one builder's selected steps (:mod:`iota2.core.plan`)."""
    from iota2.core.plan import feature_count, format_plan, plan_steps

    tile_set = getattr(builder, "tile_set", None)
    features = feature_count(tile_set) if tile_set is not None else None
    print(format_plan(plan_steps(graph, groups, tile_set, features), parallel_tasks, features))


def run(args: argparse.Namespace) -> int:
    from iota2.core.graph_picture import picture_paths

    pictures = picture_paths(getattr(args, "execution_graph_files", None))  # a bad path: before anything runs
    config = load_config(args.config)
    parallel_tasks = args.nb_parallel_tasks if args.scheduler_type != "debug" else 1
    if args.nb_parallel_tasks < 1:
        raise ConfigError(f"-nb_parallel_tasks {args.nb_parallel_tasks}: use 1 or more")
    try:  # every configuration check, before any cluster starts or any file is written
        builders = select_builders(config, parallel_tasks)
        for builder in builders:
            builder.check_config()
    except ConfigError as exc:
        raise _name_the_file(config, exc) from exc
    if args.only_summary:
        try:
            plans = prepare_run(builders, config)
        except ConfigError as exc:
            raise _name_the_file(config, exc) from exc
        for builder, graph, groups in plans:
            print(f"Builder {type(builder).__name__}")
            print(graph.summary(groups))
            _print_plan(builder, graph, groups, parallel_tasks)
        _write_graph_pictures(pictures, plans)
        if args.scheduler_type in ("Slurm", "PBS"):
            import dask_jobqueue  # noqa: F401 - sets a signal handler when imported: only the main thread may

            cluster = make_cluster(args.scheduler_type, args.nb_parallel_tasks, config, dry_run=True)
            try:
                print(f"Job script ({args.nb_parallel_tasks} job(s), one worker each):\n{cluster.job_script()}")
            finally:
                cluster.close()
        return 0
    output = check_output_folder(config, sorted({entry for builder in builders
                                                 for entry in getattr(builder, "output_entries", ())}))
    created = not output.exists()
    lock = RunLock(output)
    lock.acquire()
    try:
        return _run_locked(args, config, builders, output, pictures)
    finally:
        lock.release()
        if created and output.is_dir() and not any(output.iterdir()):
            output.rmdir()  # refused before anything ran: leave no trace


def _run_locked(args: argparse.Namespace, config: Config, builders: list, output: Path,
                pictures: list[Path] = ()) -> int:
    """The run itself, once the output folder is checked and locked (``pictures``: files of
    ``-execution_graph_files``, drawn before any task runs)."""
    starting = None
    if args.scheduler_type in ("Slurm", "PBS"):
        import dask_jobqueue  # noqa: F401 - sets a signal handler when imported: only the main thread may
    if args.scheduler_type == "localCluster":
        start_worker_server()  # from this thread: the workers ignore Ctrl-C, which the driver handles
    if args.scheduler_type != "debug":
        # start the dask workers while the inputs are checked and the graph is built
        starting = concurrent.futures.ThreadPoolExecutor(max_workers=1).submit(
            make_cluster, args.scheduler_type, args.nb_parallel_tasks, config,
            warm_learner=any(builder.learns for builder in builders))
    try:
        plans = prepare_run(builders, config)
        fresh = config["chain"]["remove_output_path"] and not args.restart
        for _builder, graph, groups in plans:
            if groups[0] != graph.groups[0] and not fresh:  # earlier groups' outputs must be there, up to date
                graph.check_prerequisites(groups, TaskStatus(output / graph.status_file))
        _write_graph_pictures(list(pictures), plans)
    except BaseException as exc:
        if starting is not None:
            starting.result().close()
        if isinstance(exc, ConfigError):
            raise _name_the_file(config, exc) from exc
        raise
    cluster = None
    if starting is not None:  # a local cluster still starting: the first tasks run in this process meanwhile
        cluster = starting if args.scheduler_type == "localCluster" else starting.result()
    if args.scheduler_type == "debug":
        from iota2.core.allocator import reuse_freed_memory

        reuse_freed_memory()  # tasks run in this process (workers do it in their preload)
    started = datetime.datetime.now().isoformat(timespec="seconds")
    layout = OutputLayout(output)
    try:
        # builders that start from their first group make their outputs again: clear once, for all of them (a
        # second builder must not delete or set aside what the first one of this run wrote)
        anew = [builder for builder, graph, groups in plans if groups[0] == graph.groups[0]]
        entries = sorted({entry for builder in anew for entry in getattr(builder, "output_entries", ())})
        products = sorted({pattern for builder in anew for pattern in builder.final_products()})
        if config["chain"]["remove_output_path"] and anew and not args.restart and layout.marker.exists():
            kept = remove_outputs(output, entries, products)
            LOGGER.warning("chain.remove_output_path is true: deleted the outputs of earlier runs in %s%s", output,
                           f" (kept what iota2 did not write: {', '.join(kept)})" if kept else "")
        mark_output_folder(output)
        for stale in output.rglob(".*.tmp*"):  # left by a killed run; never taken as a finished output
            stale.unlink()
        moved = [] if args.restart else set_aside_previous_products(output, products)
        if moved:
            LOGGER.warning("the products of the previous run (%s) were moved from %s to %s; this run writes new ones",
                           ", ".join(moved), layout.final, layout.previous_final)
        write_incomplete_note(output, started)
        with atomic_output(layout.resolved_config) as tmp:
            tmp.write_text(config.to_yaml(), encoding="utf-8")
        for builder, graph, groups in plans:
            log_file = logging.FileHandler(layout.driver_log, encoding="utf-8")
            log_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            logging.getLogger().addHandler(log_file)
            selected = graph.subgraph(groups)
            start = time.perf_counter()
            LOGGER.info("%s: %d tasks in groups %s", type(builder).__name__, len(selected.tasks), ", ".join(groups))
            given, cluster = cluster, None  # closed by execute; a second builder starts its own
            try:
                states = execute(selected, output, args.scheduler_type, args.nb_parallel_tasks, restart=args.restart,
                                 allowed_retry=config["task_retry_limits"]["allowed_retry"],
                                 log_level=config["chain"]["log_file_level"], config=config,
                                 progress=not args.no_progress, cluster=given)
            except TaskFailedError as exc:
                where = (f"the previous run's products in final/ were moved to {PREVIOUS_FINAL}/" if moved
                         else f"products in final/ may be out of date (final/{INCOMPLETE_NOTE} says so)")
                raise TaskFailedError(f"{exc}; {where}") from None
            finally:
                logging.getLogger().removeHandler(log_file)
                with contextlib.suppress(OSError):  # a full disk: the tasks' errors say so
                    log_file.close()
            done = sum(1 for state in states.values() if state == "done")
            where = f"outputs in {layout.final}"
            if groups[-1] != graph.groups[-1]:
                following = graph.groups[graph.groups.index(groups[-1]) + 1]
                where = (f"stopped after group '{groups[-1]}' (chain.last_step), outputs under {output}; go on with "
                         f"chain.first_step: {following}")
            print(f"iota2: {type(builder).__name__} finished: {done} tasks done in {time.perf_counter() - start:.1f} s; "
                  f"{where}", file=sys.stderr)
        remove_incomplete_note(output)
    finally:
        if cluster is not None:  # interrupted before execute took it over
            (cluster.result() if isinstance(cluster, concurrent.futures.Future) else cluster).close()
    return 0


def plugins_command(argv: list[str]) -> int:
    from iota2.core.plugins import describe_plugins

    argparse.ArgumentParser(prog="iota2 plugins", description="List the installed iota2 plugins.").parse_args(argv)
    for row in describe_plugins():
        print(f"{row['name']}  ({row['module']}, from {row['source']})")
        for item in row["provides"]:
            print(f"    {item}")
    return 0


def config_reference_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="iota2 config-reference",
                                     description="Print the configuration reference (Markdown).")
    parser.add_argument("-o", "--output", help="write to this file instead of standard output")
    args = parser.parse_args(argv)
    text = reference_markdown()
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


DEMO_MIN_SIZE, DEMO_MAX_SIZE = 40, 10980


def _demo_size(text: str) -> int:
    """``--size`` of ``iota2 demo``: an even number of pixels the generator and the chain can use."""
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of pixels") from None
    if size % 2 or not DEMO_MIN_SIZE <= size <= DEMO_MAX_SIZE:
        raise argparse.ArgumentTypeError(f"{size}: use an even number from {DEMO_MIN_SIZE} to {DEMO_MAX_SIZE}")
    return size


def demo_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="iota2 demo", description="Generate the demo data set (two THEIA-like "
                                     "Sentinel-2 tiles, ground truth, nomenclature) and run the classification chain.")
    parser.add_argument("--out", default="demo_output", help="folder for the demo data and outputs")
    parser.add_argument("--size", type=_demo_size, default=300, help=f"tile size in pixels (10 m): an even number "
                        f"from {DEMO_MIN_SIZE} to {DEMO_MAX_SIZE} (default: %(default)s)")
    parser.add_argument("-scheduler_type", default="localCluster", choices=SCHEDULER_TYPES)
    parser.add_argument("-nb_parallel_tasks", type=int, default=2)
    parser.add_argument("-no_progress", action="store_true", help="no progress bar")
    parser.add_argument("--generate-only", action="store_true", help="write data and config, do not run")
    args = parser.parse_args(argv)
    from iota2.datagen.sentinel2 import generate_demo

    demo = generate_demo(args.out, size=args.size)
    print(f"iota2: demo data and configuration written to {demo['config']}", file=sys.stderr)
    if args.generate_only:
        return 0
    options = ["-config", str(demo["config"]), "-scheduler_type", args.scheduler_type,
               "-nb_parallel_tasks", str(args.nb_parallel_tasks)] + (["-no_progress"] if args.no_progress else [])
    return run(run_parser().parse_args(options))


def convert_config_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="iota2 convert-config",
                                     description="Write an iota2 .cfg configuration (section : { key : value }) as "
                                                 "YAML, comments kept; values computed with $references or '+' are "
                                                 "written resolved.")
    parser.add_argument("cfg", help="the .cfg file")
    parser.add_argument("-o", "--output", help="write to this file instead of standard output")
    args = parser.parse_args(argv)
    from iota2.core.cfg_syntax import parse, to_yaml
    from iota2.core.config import read_utf8_text

    source = Path(args.cfg)
    if not source.is_file():
        raise ConfigError(f"convert-config: '{source}' does not exist; give the path of a .cfg configuration")
    text = to_yaml(parse(read_utf8_text(source, ConfigError, "configuration file"), str(source)), str(source))
    if args.output:
        with atomic_output(args.output) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
        print(f"iota2: {source} written as YAML in {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


COMMANDS = {"plugins": plugins_command, "config-reference": config_reference_command, "demo": demo_command,
            "convert-config": convert_config_command}


def _one_line_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
    """Python warnings of the libraries, on the console as one ``iota2: WARNING:`` line (tasks' own warnings
    go to their logs)."""
    text = str(message).strip().splitlines()
    logging.getLogger("py.warnings").warning("%s: %s", category.__name__, text[0] if text else "")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="iota2: %(levelname)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)  # the console shows warnings; task details go to the task logs
    logging.getLogger("iota2").setLevel(logging.INFO)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    logging.raiseExceptions = False  # a log file on a full disk: no traceback on the console, the run goes on
    in_main_thread = threading.current_thread() is threading.main_thread()
    # a crash in native code (GDAL, a compiled kernel, a plugin's extension) prints where every thread of this
    # process was, instead of ending the run without a word
    dump_on_crash = not faulthandler.is_enabled()
    if dump_on_crash:
        try:
            faulthandler.enable(all_threads=True)
        except (OSError, ValueError, AttributeError):  # a stderr without file descriptor (a notebook): no dump
            dump_on_crash = False
    previous_handler = signal.signal(signal.SIGINT, _interrupt) if in_main_thread else None
    previous_showwarning = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        if argv and argv[0] in COMMANDS:
            return COMMANDS[argv[0]](argv[1:])
        if argv and not argv[0].startswith("-"):
            from iota2.core.plugins import commands

            registered = commands()
            if argv[0] in registered:
                return registered[argv[0]](argv[1:])
            known = sorted(set(COMMANDS) | set(registered))
            close = difflib.get_close_matches(argv[0], known, n=1)
            raise ConfigError(f"unknown command {argv[0]!r}{f'; did you mean {close[0]!r}?' if close else ''} "
                              f"(commands: {', '.join(known)}; or run a workflow with -config FILE)")
        return run(run_parser().parse_args(argv))
    except KeyboardInterrupt:
        print("iota2: interrupted; resume with -restart", file=sys.stderr)
        return 130
    except TaskFailedError as exc:
        print(f"iota2: error: {exc}", file=sys.stderr)
        return 1
    except Iota2Error as exc:
        print(f"iota2: error: {exc}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = previous_showwarning
        if in_main_thread:
            signal.signal(signal.SIGINT, previous_handler)
        if dump_on_crash:
            faulthandler.disable()


if __name__ == "__main__":
    sys.exit(main())
