"""``netlens load``: concurrent clients with a progress bar, then req/s and latency."""

from __future__ import annotations

import argparse

from netlens.commands.options import add_endpoint, positive_float, positive_int

HELP = "Drive N concurrent clients doing M requests each; print req/s, p50/p99 latency and errors."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``netlens load``."""
    parser.add_argument("--mode", choices=("search", "echo"), default="search",
                        help="search: one connection per request; echo: one connection per client")
    add_endpoint(parser, "server")
    parser.add_argument("--clients", type=positive_int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--requests", type=positive_int, default=100, help="requests per client (default 100)")
    parser.add_argument("--duration", type=positive_float, default=None, metavar="SECONDS",
                        help="stop after this long even if requests remain")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run the load with a Rich progress bar and print the figures."""
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from netlens.server.load import LoadResult, LoadRunner

    runner = LoadRunner(args.host, args.port, args.mode, clients=args.clients,
                        requests=args.requests, duration=args.duration)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]:>8.0f} req/s  {task.fields[errors]} errors"),
                  TimeElapsedColumn(), console=console, transient=args.json) as bar:
        task = bar.add_task(f"{args.mode} x{args.clients}", total=runner.total, rate=0.0, errors=0)

        def progress(result: LoadResult) -> None:
            bar.update(task, completed=result.completed + result.errors, rate=result.rate,
                       errors=result.errors)

        result = runner.run(progress)
    figures = {
        "mode": result.mode, "clients": result.clients, "completed": result.completed,
        "errors": result.errors, "elapsed_s": round(result.elapsed, 3),
        "req_per_s": round(result.rate, 1),
        "p50_ms": round(result.percentile(50) * 1000, 3), "p99_ms": round(result.percentile(99) * 1000, 3),
        "error_kinds": result.error_kinds,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{result.completed} requests in {result.elapsed:.2f} s: {result.rate:,.0f} req/s, "
              f"latency p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, "
              f"{result.errors} errors"
              + (" (" + ", ".join(f"{k}: {v}" for k, v in result.error_kinds.items()) + ")"
                 if result.error_kinds else ""))
    return 1 if result.errors else 0
