import pytest

from k24_rllib.sparsity import K24Args, KaleiArgs


def test_defaults_match_spec():
    args = K24Args()
    assert (args.temperature_init, args.temperature_min, args.anneal_start, args.anneal_end) == (5.0, 0.1, 0.0, 0.25)
    assert args.anneal_end_step is None and args.ema_momentum == 0.99 and args.hetero_init_scale == 3.0
    assert (args.div_coef, args.deque_len, args.reset_interval, args.reset_ratio) == (0.1, 100, 10000, 0.1)
    assert args.use_adaptive_reset is False and args.kl_threshold == 0.1 and (args.n, args.m) == (2, 4)
    assert args.fade_pruned is False and args.pruned_decay == 0.0  # off: the spec's K-2:4
    kalei = KaleiArgs()
    assert (kalei.threshold_init_scale, kalei.threshold_init_bias, kalei.reset_ratio) == (5.0, 5.0, 0.1)


def test_from_dict_round_trip():
    args = K24Args.from_dict({"div_coef": 0.2, "anneal_end_step": 800_000})
    assert args.div_coef == 0.2 and args.anneal_end_step == 800_000
    assert K24Args.from_dict(args.to_dict()) == args
    assert K24Args.from_dict(None) == K24Args()


@pytest.mark.parametrize("cls", [K24Args, KaleiArgs])
def test_unknown_key_named_with_valid_list(cls):
    with pytest.raises(ValueError, match=r"div_coeff.*valid keys:.*div_coef"):
        cls.from_dict({"div_coeff": 0.2})


@pytest.mark.parametrize(
    "key, value",
    [
        ("temperature_min", 6.0),
        ("reset_ratio", 1.5),
        ("reset_ratio", 0.0),
        ("anneal_end", -0.1),
        ("ema_momentum", 1.5),
        ("deque_len", 0),
        ("reset_interval", 2.5),
        ("n", 4),
        ("schedule", "exp"),
        ("reset_ratio", "0.5"),
        ("deque_len", True),
        ("use_adaptive_reset", 1),
        ("anneal_end_step", 8e5),
        ("pruned_decay", 1.0),
        ("pruned_decay", -0.01),
    ],
)
def test_bad_k24_value_names_key(key, value):
    with pytest.raises(ValueError, match=rf"K24_args\.\w+=.* is invalid"):
        K24Args.from_dict({key: value})


def test_anneal_end_step_replaces_anneal_end_in_the_order_check():
    assert K24Args(anneal_start=0.5, anneal_end_step=600_000).anneal_end == 0.25  # unused, so not checked
    with pytest.raises(ValueError, match=r"anneal_end=0\.25 is invalid: must be in \[anneal_start \(0\.5\), 1\]"):
        K24Args(anneal_start=0.5)


def test_error_message_format():
    with pytest.raises(ValueError, match=r"^K24_args\.reset_ratio=1\.5 is invalid: must be in \(0, 1\]$"):
        K24Args(reset_ratio=1.5)
    with pytest.raises(ValueError, match=r"anneal_end=0\.2 is invalid"):
        K24Args(anneal_start=0.5, anneal_end=0.2)
    with pytest.raises(ValueError, match=r"kalei_args\.reset_ratio=2"):
        KaleiArgs.from_dict({"reset_ratio": 2})
