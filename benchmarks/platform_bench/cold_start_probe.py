"""Time one cold start inside a lab host: from the start command to the first HTTP 200.

Copied into the host and run there with its python3 (standard library only),
so that no docker exec round trip falls inside the timed span. Prints one JSON
object: the seconds until the start command returned and until the first 200.

    python3 cold_start_probe.py unit --unit U --container C --image I --url URL [--pull]
    python3 cold_start_probe.py docker --unit U --container C --image I --port P --url URL [--pull] \
        --command '["/bin/httpd", ...]'

Both modes stop the workload's unit first, so that both start on the same idle host
and a pulled image is in use by no container.
"""

import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

POLL_SECONDS = 0.01


def run(command, check=True):
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def remove_image(image):
    result = run(["docker", "image", "rm", image], check=False)
    if result.returncode != 0 and "No such image" not in result.stderr:
        sys.exit(f"removing {image} failed: {result.stderr.strip()}")


def wait_for_200(url, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (a loopback URL)
                if response.status == 200:
                    return time.monotonic()
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(POLL_SECONDS)
    sys.exit(f"timed out after {timeout} s waiting for HTTP 200 from {url}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["unit", "docker"])
    parser.add_argument("--unit", required=True, help="the workload's systemd unit")
    parser.add_argument("--container", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--port", type=int, help="host port for the docker mode")
    parser.add_argument("--pull", action="store_true", help="remove the image first, so the start pulls it")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--command", default="[]", help="the container command for the docker mode, as a JSON list")
    args = parser.parse_args()

    # Stop whatever serves the port and leave no container behind, outside the timed span.
    run(["systemctl", "stop", args.unit])
    # Repeated starts would hit the unit's start limit (StartLimitBurst), which guards against crash loops.
    run(["systemctl", "reset-failed", args.unit], check=False)
    run(["docker", "rm", "--force", args.container], check=False)
    if args.pull:
        remove_image(args.image)

    started = time.monotonic()
    if args.mode == "unit":
        run(["systemctl", "start", args.unit])
    else:
        run(
            [
                "docker",
                "run",
                "--detach",
                "--rm",
                "--name",
                args.container,
                "--publish",
                f"{args.port}:8080",
                args.image,
                *json.loads(args.command),
            ]
        )
    returned = time.monotonic()
    healthy = wait_for_200(args.url, args.timeout)

    if args.mode == "docker":
        run(["docker", "rm", "--force", args.container], check=False)
    print(json.dumps({"start_command_s": returned - started, "first_200_s": healthy - started}))


if __name__ == "__main__":
    main()
