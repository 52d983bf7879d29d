"""What a run cost and how it went, from the process and the run's log: peak memory, the
device, its power and so the energy (an estimate), the FID curve and the throughput."""

from __future__ import annotations

import math
import re
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Optional

from gans.hardware import cpu_name, uses_gpu
from gans.runlog import RunLog
from gans.training.clock import Clock


class PeakMemory:
    """Peak resident memory of this process from now on.

    Linux lets a process reset its high-water mark (/proc/self/clear_refs, "5"), so each run of a
    suite gets its own peak; elsewhere ru_maxrss, the peak since the process started, is all
    there is, and the result says so.
    """

    def __init__(self):
        self.kind = "process peak since start (ru_maxrss)"
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.kind = "peak during this run (VmHWM)"
        except OSError:
            pass
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
        except RuntimeError:
            pass

    def read_mib(self) -> float:
        try:
            text = Path("/proc/self/status").read_text()
            match = re.search(r"VmHWM:\s+(\d+) kB", text)
            if match and self.kind.startswith("peak during"):
                return int(match.group(1)) / 1024
        except OSError:
            pass
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2 ** 20 if sys.platform == "darwin" else rss / 1024  # bytes vs KiB

    @staticmethod
    def gpu_mib() -> Optional[float]:
        import torch

        return torch.cuda.max_memory_allocated() / 2 ** 20 if torch.cuda.is_available() else None


# W per core: a server part's TDP over its cores, a desktop part's likewise. An estimate, used
# only where no --watts is given; docs/benchmarks.md says how to read it.
CPU_WATTS_PER_CORE = (("EPYC", 5.6, "AMD EPYC 9554: 360 W / 64 cores"),
                      ("Xeon", 6.3, "Intel Xeon Platinum 8480+: 350 W / 56 cores"),
                      ("Apple", 2.5, "Apple M2: about 20 W / 8 cores"))
CPU_WATTS_DEFAULT = (10.0, "a desktop CPU, e.g. AMD Ryzen 9 7950X: 170 W / 16 cores")
GPU_WATTS = (("H200", 700), ("H100 PCIe", 350), ("H100", 700), ("A100-PCIE", 250),
             ("A100", 400), ("L40S", 350), ("L4", 72), ("A10", 150), ("T4", 70), ("V100", 300),
             ("4090", 450), ("3090", 350))
GPU_WATTS_DEFAULT = 300


def describe_device(trainer: dict) -> dict:
    import torch

    if uses_gpu(trainer):
        return {"kind": "cuda", "name": torch.cuda.get_device_name(0), "count": 1,
                "threads": None}
    threads = torch.get_num_threads()
    plural = "s" if threads != 1 else ""
    return {"kind": "cpu", "name": f"{cpu_name()} ({threads} thread{plural})", "count": 1,
            "cpu": cpu_name(), "threads": threads}


def power_estimate(device: dict, watts: Optional[float]) -> tuple:
    """(W, how it was found). Energy is this times device time: an estimate, not a reading."""
    if watts is not None:
        return watts, f"{watts:g} W given (--watts or the suite's watts) x device time"
    if device["kind"] == "cuda":
        limit = _gpu_power_limit()
        if limit is not None:
            return limit, (f"estimate: the GPU's board power limit ({limit:g} W, nvidia-smi) x "
                           "device time; an upper bound")
        for key, w in GPU_WATTS:
            if key.lower() in device["name"].lower():
                return float(w), (f"estimate: {device['name']} board power {w} W (table in "
                                  "gans/bench/measure.py) x device time; an upper bound")
        return float(GPU_WATTS_DEFAULT), (f"estimate: {GPU_WATTS_DEFAULT} W for an unknown GPU "
                                          "x device time; pass --watts for a better figure")
    per_core, why = next(((w, why) for key, w, why in CPU_WATTS_PER_CORE
                          if key.lower() in device["cpu"].lower()), CPU_WATTS_DEFAULT)
    total = per_core * device["threads"]
    return total, (f"estimate: {device['threads']} CPU threads x {per_core:g} W per core "
                   f"({why}; table in gans/bench/measure.py) x device time; CPU only, no RAM")


def _gpu_power_limit() -> Optional[float]:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        text = subprocess.run(["nvidia-smi", "--query-gpu=power.limit",
                               "--format=csv,noheader,nounits", "-i", "0"],
                              capture_output=True, text=True, timeout=20).stdout
        return float(text.strip().splitlines()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def fid_curve(log: RunLog, clock: Clock) -> list:
    """[[generator step, kimg, training seconds, FID]] of the FID tracked during training."""
    return [[step, clock.kimg_at(step), seconds, value]
            for step, seconds, value in log.curve("fid")]


def images_per_sec(log: RunLog) -> Optional[float]:
    """The median of the training throughput the run logged."""
    values = [v for _, _, v in log.curve("images_per_sec") if math.isfinite(v)]
    return statistics.median(values) if values else None
