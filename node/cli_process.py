"""Whether a node process of a network runs, by psutil (the CLI's view; node processes never import this)."""

from __future__ import annotations


def process_state(pid: int, config: str) -> tuple[str, float | None]:
    """``("running"|"stopped"|"down", rss_mb)`` of a node process, by psutil: down when the PID is gone, a
    zombie, or no longer runs the node command of ``config``; stopped when SIGSTOPped or traced."""
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()
            if status == psutil.STATUS_ZOMBIE or config not in proc.cmdline():
                return "down", None
            rss = round(proc.memory_info().rss / 2**20, 1)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "down", None
    return ("stopped" if status in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP) else "running"), rss
