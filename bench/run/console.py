"""Lines for the user: printed at once whatever stdout is, and durations as ``H:MM:SS``."""
from __future__ import annotations


def echo(line: str) -> None:
    """Print a line at once, also when stdout is a pipe or a file (``| tee``, nohup)."""
    print(line, flush=True)


def hours_minutes_seconds(seconds: float) -> str:
    """``H:MM:SS``, hours unbounded (a long benchmark's ETA passes a day)."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
