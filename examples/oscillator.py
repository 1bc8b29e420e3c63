"""A damped, driven oscillator over a grid of damping ratios and drive frequencies.

``make demo`` runs this on 2 cores with a progress bar, then looks at the file the way
a user does next, from a fresh process: ``pytraj info``, the top runs from
``pytraj runs --where ...`` and ``pytraj report``. Each run integrates

    x'' + 2 ζ ω0 x' + ω0² x = F cos(ω t)

with ``scipy.integrate.solve_ivp`` and stores the steady-state amplitude, its phase lag
against the drive, the energy dissipated per period and the trace x(t). The resonance
curve (amplitude against ω, a line per ζ) is the classic picture; the report draws it.
Set ``PYTRAJ_EXAMPLE_SMALL=1`` for a quick run with a handful of points.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

import pytraj as pt

#: The time the transient takes to die out is about 1/(ζ ω0); we integrate well past it.
T_END = 100.0


def simulate(traj: pt.Trajectory) -> float:
    """Integrate one oscillator and store what a physicist reads off it."""
    zeta, omega, omega0, force = traj.damping, traj.drive, traj.omega0, traj.force

    def rhs(t: float, state: np.ndarray) -> list[float]:
        x, v = state
        return [v, force * np.cos(omega * t) - 2 * zeta * omega0 * v - omega0**2 * x]

    times = np.linspace(0.0, T_END, 2001)
    solution = solve_ivp(rhs, (0.0, T_END), [0.0, 0.0], t_eval=times, rtol=1e-6, atol=1e-8)
    x, v = solution.y
    steady = times >= T_END - 4 * np.pi / omega  # the last two drive periods
    amplitude = float(np.abs(x[steady]).max())
    # Phase lag from the projection of x on the drive over the steady window.
    drive = np.exp(1j * omega * times[steady])
    lag = float(-np.angle(np.sum(x[steady] * np.conj(drive))))
    dissipated = float(np.trapezoid(2 * zeta * omega0 * v[steady] ** 2, times[steady]) / 2)
    traj.add_result("amplitude", amplitude, comment="steady-state amplitude")
    traj.add_result("phase", lag % (2 * np.pi), comment="phase lag behind the drive (rad)")
    traj.add_result("dissipated", dissipated, comment="energy dissipated per drive period")
    traj.add_result("trace", x[-200:].astype(np.float32), comment="the last 200 samples of x(t)")
    return amplitude


def main(
    n_drive: int = 16,
    dampings: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8),
    filename: str | Path = "out/oscillator.h5",
    ncores: int = 2,
) -> pt.Trajectory:
    """Run the study (len(dampings) x n_drive runs) and return it, loaded from the file."""
    env = pt.Environment(
        trajectory="oscillator",
        filename=filename,
        comment="damped driven oscillator: resonance curves",
        ncores=ncores,
        overwrite=True,  # a demo: start afresh on every call
    )
    traj = env.trajectory
    traj.add_parameter("damping", 0.1, comment="damping ratio ζ")
    traj.add_parameter("drive", 1.0, comment="drive frequency ω (rad per unit time)")
    traj.add_parameter("omega0", 1.0, comment="natural frequency ω0")
    traj.add_parameter("force", 1.0, comment="drive amplitude F")
    traj.explore(
        pt.cartesian_product(
            {"damping": list(dampings), "drive": np.linspace(0.2, 2.0, n_drive).tolist()}
        )
    )
    env.run(simulate)
    env.close()
    print(f"{len(traj)} oscillators integrated on {ncores} cores into {env.filename}")
    return pt.load(filename)


if __name__ == "__main__":
    small = os.environ.get("PYTRAJ_EXAMPLE_SMALL") == "1"
    main(n_drive=4 if small else 16, dampings=(0.1, 0.4) if small else (0.05, 0.1, 0.2, 0.4, 0.8))
