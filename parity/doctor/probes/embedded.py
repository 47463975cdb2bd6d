"""The embedded probe of ``tailings-parity doctor``: this Python process starts R through rpy2 and runs probe.R.

Run as ``python -m parity.doctor.probes.embedded`` with TP_DOCTOR_DIR, TP_DOCTOR_SECTIONS and the probe.R
variables set by parity/doctor.py. Writes ``rpy2`` (this side) to TP_DOCTOR_OUT_RPY2; probe.R writes the rest.
"""

from __future__ import annotations

import os
import sys

from parity.doctor.probes import R_PROBE, SectionRecorder


def rpy2_section() -> dict:
    """Import rpy2, start R in this process, and say which R and which Python this is."""
    from parity.env import prepare_embedded_r

    # R reads R_LIBS once, at start-up: the project library must be in the environment before rpy2 starts R.
    prepare_embedded_r()
    import rpy2

    seen = {"version": rpy2.__version__, "python_pid": os.getpid(), "executable": sys.executable,
            "prefix": sys.prefix, "r_home_env": os.environ.get("R_HOME")}
    import rpy2.robjects as ro  # starts R

    # R's own objects and functions through rpy2's API (no R code in this file: the R side is probe.R).
    base = ro.baseenv
    version = base["R.version"]
    seen.update(r_version=str(base["R.version.string"][0]), r_home=str(base["R.home"]()[0]),
                r_pid=int(base["Sys.getpid"]()[0]),
                r_version_number=f"{version.rx2('major')[0]}.{version.rx2('minor')[0]}")
    return seen


def main() -> int:
    """Start R through rpy2, then source probe.R in embedded mode (it writes its own JSON)."""
    rec = SectionRecorder("rpy2", os.environ.get("TP_DOCTOR_OUT_RPY2", "doctor-rpy2.json"), ["rpy2"])
    rec.save()
    if not rec.run("rpy2", rpy2_section)["ok"]:
        return 0
    import rpy2.robjects as ro

    os.environ["TP_DOCTOR_MODE"] = "embedded"
    ro.r["source"](str(R_PROBE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
