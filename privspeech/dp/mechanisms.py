"""A calibrated lattice mechanism: the sampler for given sensitivities and budget, and its ledger fields."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import UsageError
from .calibration import check_delta, check_positive, gaussian_sigma2, laplace_scale, zcdp_epsilon, zcdp_rho
from .rng import SecureRandom, resolve
from .samplers import DiscreteGaussian, DiscreteLaplace

MECHANISMS = ("laplace", "gaussian")
REPORT_DELTA = 1e-6  # delta at which a rho-only request is also reported as (epsilon, delta)


@dataclass
class Mechanism:
    """A sampler calibrated to a query's sensitivity, and the ledger fields that state its guarantee."""

    sampler: DiscreteLaplace | DiscreteGaussian
    fields: dict[str, Any]

    @property
    def private(self) -> bool:
        return self.sampler.rng.private


def calibrate(*, mechanism: str, l1: int | Fraction, l2_squared: int | Fraction, epsilon: float | None = None,
              delta: float | None = None, rho: float | None = None, rng: SecureRandom | None = None) -> Mechanism:
    """Calibrate the discrete Laplace (pure epsilon-DP) or Gaussian (rho-zCDP) to a query.

    Parameters
    ----------
    mechanism : {'laplace', 'gaussian'}
    l1, l2_squared : int or Fraction
        The query's L1 sensitivity and squared L2 sensitivity, in lattice steps.
    epsilon, delta, rho : float, optional
        Laplace: `epsilon` (delta absent or 0). Gaussian: `rho`, or `epsilon` with `delta` (the largest
        rho whose CKS conversion meets them).
    rng : SecureRandom, optional
        Defaults to a fresh generator keyed from ``os.urandom``.
    """
    rng = resolve(rng)
    if mechanism == "laplace":
        if rho is not None:
            raise UsageError("rho applies to the Gaussian mechanism", hint="use --epsilon with laplace")
        if delta not in (None, 0, 0.0):
            raise UsageError("the Laplace mechanism is pure epsilon-DP: delta must be 0",
                             hint="use --mechanism gaussian for (epsilon, delta)")
        if epsilon is None:
            raise UsageError("the Laplace mechanism needs epsilon")
        scale = laplace_scale(l1, epsilon)
        sampler = DiscreteLaplace(scale, rng=rng)
        fields = {"mechanism": sampler.name, "epsilon": float(epsilon), "delta": 0.0,
                  "sensitivity": {"l1": float(l1)}, "scale": float(scale)}
    elif mechanism == "gaussian":
        if rho is None:
            if epsilon is None or delta is None:
                raise UsageError("the Gaussian mechanism needs rho, or epsilon and delta",
                                 hint="e.g. --rho 0.5, or --epsilon 4 --delta 1e-6")
            rho = zcdp_rho(check_positive(epsilon, "epsilon"), check_delta(delta))
        elif epsilon is not None:
            raise UsageError("give rho, or epsilon and delta, not both")
        check_positive(rho, "rho")
        report_delta = check_delta(delta) if delta is not None else REPORT_DELTA
        sigma2 = gaussian_sigma2(l2_squared, rho)
        sampler = DiscreteGaussian(sigma2, rng=rng)
        fields = {"mechanism": sampler.name, "rho": float(rho), "epsilon": zcdp_epsilon(rho, report_delta),
                  "delta": report_delta, "sensitivity": {"l2": math.sqrt(l2_squared)},
                  "sigma": math.sqrt(sigma2)}
    else:
        raise UsageError(f"unknown mechanism {mechanism!r}", hint=f"choose one of: {', '.join(MECHANISMS)}")
    fields["sampler"] = f"{sampler.name} exact lattice sampler ({rng.description})"
    fields["private"] = rng.private
    fields["release_id"] = secrets.token_hex(8)  # one per release: the ledger counts a release once (accounting)
    return Mechanism(sampler, fields)
