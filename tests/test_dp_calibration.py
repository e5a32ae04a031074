"""Calibration, the zCDP conversion and composition agree with OpenDP's privacy maps."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from privspeech.dp.accounting import Cost, compose, releases
from privspeech.dp.calibration import gaussian_sigma2, laplace_scale, zcdp_epsilon, zcdp_rho
from privspeech.dp.mechanisms import calibrate
from privspeech.dp.rng import SecureRandom
from privspeech.errors import ExitStatus, PrivspeechError

dp = pytest.importorskip("opendp.prelude")
dp.enable_features("contrib")


def opendp_laplace(scale: float):
    return dp.m.make_laplace(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=scale)


def opendp_gaussian(sigma: float):
    return dp.m.make_gaussian(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=sigma)


@pytest.mark.parametrize("sensitivity, epsilon", [(1, 0.5), (65535, 8.0), (160 * 65535, 3.0), (7, 100.0)])
def test_laplace_scale_matches_opendp(sensitivity, epsilon):
    scale = laplace_scale(sensitivity, epsilon)
    assert scale == Fraction(sensitivity) / Fraction(epsilon)
    assert opendp_laplace(float(scale)).map(sensitivity) == pytest.approx(epsilon, rel=1e-12)


@pytest.mark.parametrize("sensitivity, rho", [(1, 0.5), (3, 0.05), (65535, 2.0), (12, 10.0)])
def test_gaussian_rho_matches_opendp(sensitivity, rho):
    sigma = math.sqrt(gaussian_sigma2(sensitivity**2, rho))
    assert opendp_gaussian(sigma).map(sensitivity) == pytest.approx(rho, rel=1e-9)


@pytest.mark.parametrize("sigma, sensitivity, delta", [(3.0, 1, 1e-6), (100.0, 7, 1e-5), (0.7, 2, 1e-9),
                                                       (2.0, 3, 1e-6), (40.0, 1, 1e-10)])
def test_zcdp_conversion_matches_opendp(sigma, sensitivity, delta):
    gaussian = opendp_gaussian(sigma)
    expected = dp.c.make_zCDP_to_approxDP(gaussian).map(sensitivity).epsilon(delta)
    rho = sensitivity**2 / (2 * sigma**2)
    ours = zcdp_epsilon(rho, delta)
    assert ours == pytest.approx(expected, rel=1e-6)
    assert ours >= expected * (1 - 1e-12)  # never understated
    assert ours <= rho + 2 * math.sqrt(rho * math.log(1 / delta))  # tighter than the textbook bound


@pytest.mark.parametrize("epsilon, delta", [(1.0, 1e-6), (8.0, 1e-5), (0.3, 1e-9)])
def test_rho_for_epsilon_delta_inverts_the_conversion(epsilon, delta):
    rho = zcdp_rho(epsilon, delta)
    assert zcdp_epsilon(rho, delta) <= epsilon
    assert zcdp_epsilon(rho * 1.001, delta) > epsilon


def test_pure_composition_matches_opendp():
    scales, d_in = [2.0, 5.0, 0.5], 1
    composed = dp.c.make_composition([opendp_laplace(s) for s in scales])
    entries = [{"op": "noise", "mechanism": "discrete-laplace", "epsilon": opendp_laplace(s).map(d_in), "delta": 0.0,
                "unit": "sample"} for s in scales]
    assert compose(releases(entries))["sample"].epsilon == pytest.approx(composed.map(d_in), rel=1e-12)


def test_zcdp_composition_and_report_match_opendp():
    sigmas, d_in, delta = [3.0, 10.0, 4.5], 2, 1e-7
    composed = dp.c.make_composition([opendp_gaussian(s) for s in sigmas])
    entries = [{"op": "noise", "mechanism": "discrete-gaussian", "rho": opendp_gaussian(s).map(d_in),
                "epsilon": 99.0, "delta": 1e-6, "unit": "sample"} for s in sigmas]  # epsilon: only a report
    total = compose(releases(entries))["sample"]
    assert total.rho == pytest.approx(composed.map(d_in), rel=1e-12)
    expected = dp.c.make_zCDP_to_approxDP(composed).map(d_in).epsilon(delta)
    assert total.approx(delta)[0] == pytest.approx(expected, rel=1e-6)
    assert (total + Cost(epsilon=0.5)).approx(delta) == (pytest.approx(expected + 0.5, rel=1e-6), delta)


def test_calibrated_mechanisms_state_what_they_are():
    laplace = calibrate(mechanism="laplace", l1=65535, l2_squared=65535**2, epsilon=8, rng=SecureRandom(1))
    assert laplace.fields["scale"] == pytest.approx(65535 / 8) and laplace.fields["delta"] == 0.0
    assert laplace.fields["private"] is False and not laplace.private
    gauss = calibrate(mechanism="gaussian", l1=1, l2_squared=4, epsilon=2.0, delta=1e-6)
    assert gauss.private and gauss.fields["epsilon"] <= 2.0 and gauss.fields["delta"] == 1e-6
    assert opendp_gaussian(gauss.fields["sigma"]).map(2) == pytest.approx(gauss.fields["rho"], rel=1e-9)


@pytest.mark.parametrize("kwargs", [
    {"mechanism": "laplace", "epsilon": 0},
    {"mechanism": "laplace", "epsilon": -1.0},
    {"mechanism": "laplace", "epsilon": float("nan")},
    {"mechanism": "laplace", "epsilon": float("inf")},
    {"mechanism": "laplace"},
    {"mechanism": "laplace", "epsilon": 1.0, "delta": 1e-6},
    {"mechanism": "laplace", "epsilon": 1.0, "rho": 0.5},
    {"mechanism": "gaussian", "epsilon": 1.0},
    {"mechanism": "gaussian", "epsilon": 1.0, "delta": 0.0},
    {"mechanism": "gaussian", "epsilon": 1.0, "delta": 1.5},
    {"mechanism": "gaussian", "rho": -0.5},
    {"mechanism": "gaussian", "rho": 0.5, "epsilon": 1.0, "delta": 1e-6},
    {"mechanism": "exponential", "epsilon": 1.0},
])
def test_bad_budgets_are_usage_errors(kwargs):
    with pytest.raises(PrivspeechError) as err:
        calibrate(l1=1, l2_squared=1, **kwargs)
    assert err.value.status == ExitStatus.USAGE
