"""Command line entry point: ``python -m lab.emulator``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from .server import ComputeEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lab.emulator",
        description=(
            "Serve a local Compute Engine v1 REST API on a loopback address until SIGTERM or SIGINT. "
            "Prints 'compute emulator listening on URL' once it accepts requests."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=9471, help="TCP port; 0 picks a free one (default: %(default)s)")
    parser.add_argument(
        "--seed", metavar="FILE.json", action="append", default=[], help="fleet document to load; may be repeated"
    )
    parser.add_argument("--generate-instances", type=int, default=0, metavar="N", help="generate N instances")
    parser.add_argument(
        "--generate-zones",
        type=int,
        default=1,
        metavar="M",
        help="spread generated instances over M zones (default: %(default)s)",
    )
    parser.add_argument(
        "--generate-projects",
        type=int,
        default=1,
        metavar="P",
        help="spread generated instances over P projects (default: %(default)s)",
    )
    parser.add_argument("--generate-env", default="lab", help="env label of generated instances (default: %(default)s)")
    parser.add_argument(
        "--generate-project-prefix",
        default="mlinfra-fleet",
        help="generated projects are PREFIX-01, PREFIX-02, ... (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="delay added to every API request, in milliseconds (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on stderr; DEBUG logs every request",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if args.host not in ("127.0.0.1", "::1", "localhost") and not args.host.startswith("127."):
        print(
            f"error: --host {args.host} is not a loopback address; the emulator serves only 127.0.0.0/8 or ::1.",
            file=sys.stderr,
        )
        return 2

    emulator = ComputeEmulator(host=args.host, port=args.port, latency_ms=args.latency_ms)
    try:
        # Start first, so that fleets load once with the final URLs in their
        # selfLinks; the ready line comes only after loading.
        emulator.start()
        for path in args.seed:
            with open(path, encoding="utf-8") as stream:
                emulator.load_fleet(json.load(stream))
        if args.generate_instances:
            emulator.generate(
                args.generate_instances,
                args.generate_zones,
                args.generate_projects,
                args.generate_env,
                args.generate_project_prefix,
            )
    except (OSError, ValueError) as error:
        print(f"error: cannot start the compute emulator: {error}", file=sys.stderr)
        emulator.stop()
        return 1

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"compute emulator listening on {emulator.url}", flush=True)
    stopped.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
