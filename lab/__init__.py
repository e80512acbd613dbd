"""The local lab: systemd containers as hosts and a Compute API emulator on 127.0.0.1."""
