import pytest

from k24_rllib.sparsity import K24Args, cosine_temperature, make_temperature_schedule, progress, pruned_scale


def test_linear_hits_endpoints_and_stays():
    args = K24Args(anneal_start=0.2, anneal_end=0.6)
    tau = make_temperature_schedule(args, t_max=1000)
    assert tau(0) == tau(100) == tau(200) == 5.0
    assert tau(400) == pytest.approx((5.0 + 0.1) / 2)
    assert tau(600) == tau(800) == tau(1000) == tau(5000) == 0.1


def test_anneal_end_step_overrides_anneal_end():
    args = K24Args(anneal_end=0.5, anneal_end_step=800_000)
    tau = make_temperature_schedule(args, t_max=1_000_000)
    assert tau(500_000) > 0.1
    assert tau(400_000) == pytest.approx((5.0 + 0.1) / 2)
    assert tau(800_000) == tau(999_999) == 0.1


def test_anneal_end_step_before_start_is_rejected():
    with pytest.raises(ValueError, match="anneal_end_step"):
        make_temperature_schedule(K24Args(anneal_start=0.5, anneal_end_step=100), t_max=1000)


def test_cosine():
    tau = make_temperature_schedule(K24Args(schedule="cosine", anneal_end=0.8), t_max=1000)
    assert tau(0) == 5.0 and tau(800) == pytest.approx(0.1) and tau(1000) == pytest.approx(0.1)
    assert tau(400) == pytest.approx(2.55)
    assert tau(100) > 5.0 - (5.0 - 0.1) / 8  # slower than linear early on
    assert cosine_temperature(0.5, 1.0, 0.0) == pytest.approx(0.5)


def test_custom_callable_receives_annealing_fraction():
    seen = []

    def custom(fraction: float) -> float:
        seen.append(fraction)
        return 3.0 * 0.1**fraction

    tau = make_temperature_schedule(K24Args(anneal_end=0.5), t_max=100, custom=custom)
    assert tau(0) == 3.0 and tau(25) == pytest.approx(3.0 * 0.1**0.5) and tau(90) == pytest.approx(0.3)
    assert seen == [0.0, 0.5, 1.0]


def test_progress_is_clamped():
    assert progress(50, 100) == 0.5 and progress(500, 100) == 1.0
    with pytest.raises(ValueError):
        progress(1, 0)


def test_pruned_scale_fades_with_the_temperature():
    assert pruned_scale(5.0, 5.0, 0.1) == 1.0 and pruned_scale(0.1, 5.0, 0.1) == 0.0
    assert pruned_scale(2.55, 5.0, 0.1) == pytest.approx(0.5)
    assert pruned_scale(7.0, 5.0, 0.1) == 1.0 and pruned_scale(0.05, 5.0, 0.1) == 0.0  # a custom schedule's tau
    assert pruned_scale(0.1, 0.1, 0.1) == 0.0  # no annealing: exact N:M throughout
