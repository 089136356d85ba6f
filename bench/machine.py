"""What every benchmark prints about the machine it ran on (shared by bench/*.py)."""
import os


def machine_report(backend_names, load_start, torch):
    """Lines on CPU count and load, numba's and torch's threads, and thread-related settings.

    backend_names: the tinygen backends timed; load_start: os.getloadavg()[0] before timing;
    torch: the torch module, or None when it is not installed.
    """
    lines = [f"CPU count {os.cpu_count()}; load average (1 min) {load_start:.2f} at the start, "
             f"{os.getloadavg()[0]:.2f} after the timings (other work may share this machine)"]
    threads = []
    if "numba" in backend_names:
        import numba
        threads.append(f"numba {numba.__version__}: numba.get_num_threads() = "
                       f"{numba.get_num_threads()}, numba.threading_layer() = "
                       f"{numba.threading_layer()!r}")
    threads.append(f"torch {torch.__version__}: torch.get_num_threads() = "
                   f"{torch.get_num_threads()}" if torch is not None
                   else "torch not installed: no baseline")
    lines.append("; ".join(threads))
    settings = {key: os.environ[key] for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                                 "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                                                 "NUMBA_THREADING_LAYER") if key in os.environ}
    if settings:
        lines.append("environment: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    return lines
