"""bool, step and conditional parameters, and property-based checks of the whole space."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automl_cli.errors import ConfigError
from automl_cli.simulate import simulate
from automl_cli.space import parse_search_space

FILE = Path("config/config_train.json")


def space_of(*items, **args):
    doc = {"c": {"name": "C", "args": {"lr": 0.1, "opt": "adam", "momentum": 0.9, "nesterov": False, "depth": 2,
                                       "amsgrad": False, **args}, "search": list(items)}}
    return doc, parse_search_space(doc, FILE)


OPT = {"args": "opt", "type": "enum", "targets": ["adam", "sgd"], "weights": [1, 3]}
MOMENTUM = {"args": "momentum", "type": "float", "targets": [0.5, 0.99], "condition": {"param": "C.opt", "in": ["sgd"]}}


def test_bool_sets_every_listed_arg_alike():
    doc, space = space_of({"args": ["nesterov", "amsgrad"], "type": "bool"})
    [p] = space.params
    assert p.kind == "bool" and p.choices == ((False, False), (True, True))
    assert space.apply(doc, {"C.nesterov+amsgrad": [True, True]})["c"]["args"]["amsgrad"] is True


def test_step_quantises_float_and_int_ranges():
    _, space = space_of({"args": "lr", "type": "float", "targets": [0.0, 1.0], "step": 0.25},
                        {"args": "depth", "type": "int", "targets": [2, 10], "step": 2})
    rng = np.random.default_rng(0)
    draws = [space.sample(rng) for _ in range(500)]
    assert {d["C.lr"] for d in draws} == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert {d["C.depth"] for d in draws} == {2, 4, 6, 8, 10}
    assert not space.contains({"C.lr": 0.3, "C.depth": 4})


def test_a_conditional_parameter_is_sampled_applied_and_encoded_only_when_active():
    doc, space = space_of(OPT, MOMENTUM)
    rng = np.random.default_rng(1)
    draws = [space.sample(rng) for _ in range(400)]
    for d in draws:
        assert (d["C.momentum"] is None) == (d["C.opt"] == ["adam"])
        assert space.contains(d)
        assert space.decode(space.encode(d)) == d
    adam = next(d for d in draws if d["C.opt"] == ["adam"])
    assert space.apply(doc, adam)["c"]["args"]["momentum"] == 0.9  # untouched when inactive
    # inactive values reach a model as one constant, never as noise
    assert {tuple(space.encode(d)[2:]) for d in draws if d["C.opt"] == ["adam"]} == {(0.0,)}
    assert 0.72 < np.mean([d["C.opt"] == ["sgd"] for d in draws]) < 0.78  # weights 1:3


@pytest.mark.parametrize("algorithm", ["random", "bayesian", "hyperband", "asha"])
def test_every_algorithm_respects_conditions_and_steps(algorithm):
    search = [{"args": ["opt"], "type": "enum", "targets": ["adam", "sgd"]},
              {"args": ["momentum"], "type": "float", "targets": [0.5, 0.99], "condition": {"param": "opt", "in": ["sgd"]}},
              {"args": ["lr"], "type": "float", "targets": [1e-4, 1e-1], "log": True},
              {"args": ["depth"], "type": "int", "targets": [1, 9], "step": 2}]
    seen = []

    def objective(config, epoch, state):
        seen.append(config)
        assert (config["momentum"] is None) == (config["opt"] == "adam")
        assert config["depth"] in (1, 3, 5, 7, 9) and 1e-4 <= config["lr"] <= 1e-1
        return abs(np.log10(config["lr"]) + 2) + (config["momentum"] or 0), 1.0

    params = {"automl_max_recommendations": 15} if algorithm in ("random", "bayesian") else (
        {"automl_R": 9, "epoch_multiplier": 1} if algorithm == "hyperband" else {"automl_max_trials": 15})
    simulate(algorithm, search, objective, max_epochs=9, n_workers=3, params=params)
    assert {c["opt"] for c in seen} == {"adam", "sgd"}


@pytest.mark.parametrize("item, where, expected", [
    ({**MOMENTUM, "condition": {"param": "C.optimiser", "in": ["sgd"]}}, "$.c.search[1].condition.param",
     'unknown parameter "C.optimiser"'),
    ({**MOMENTUM, "condition": {"param": "C.opt", "in": ["rmsprop"]}}, "$.c.search[1].condition.in[0]",
     '"rmsprop" is not a value "C.opt" can take'),
    ({**MOMENTUM, "condition": {"param": "C.opt"}}, "$.c.search[1].condition", "missing required key: 'in'"),
    ({"args": "lr", "type": "float", "targets": [0, 1], "step": 2}, "$.c.search[1].step", "larger than the range"),
    ({"args": "depth", "type": "int", "targets": [1, 9], "step": 1.5}, "$.c.search[1].step", "whole step"),
    ({"args": "nesterov", "type": "bool", "log": True}, "$.c.search[1].log", "not bool"),
    ({"args": "lr", "type": "float", "targets": [0, 1], "step": 0}, "$.c.search[1].step", ""),
])
def test_condition_and_step_mistakes_name_the_path(item, where, expected):
    with pytest.raises(ConfigError) as err:
        space_of(OPT, item)
    assert err.value.path == where and expected in err.value.detail


def test_a_condition_on_a_conditional_parameter_is_refused():
    chained = {"args": "nesterov", "type": "bool", "condition": {"param": "C.momentum", "in": [0.9]}}
    with pytest.raises(ConfigError, match="itself conditional"):
        space_of(OPT, MOMENTUM, chained)


# -- properties ------------------------------------------------------------------------
floats = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


@st.composite
def valid_items(draw, index):
    arg = f"a{index}"
    kind = draw(st.sampled_from(["float", "int", "enum", "bool"]))
    if kind == "bool":
        return {"args": arg, "type": "bool"}
    if kind == "enum":
        n = draw(st.integers(1, 5))
        item = {"args": arg, "type": "enum", "targets": [[f"v{i}"] for i in range(n)]}
        if draw(st.booleans()):
            item["weights"] = draw(st.lists(st.floats(0.01, 100), min_size=n, max_size=n))
        return item
    if kind == "int":
        low = draw(st.integers(-100, 100))
        high = low + draw(st.integers(1, 1000))
        item = {"args": arg, "type": "int", "targets": [low, high]}
        if draw(st.booleans()):
            item["step"] = draw(st.integers(1, high - low))
        return item
    log = draw(st.booleans())
    low = draw(st.floats(1e-6, 1e3)) if log else draw(floats)
    high = low + draw(st.floats(1e-3, 1e3))
    item = {"args": arg, "type": "float", "targets": [low, high], "log": log}
    if not log and draw(st.booleans()):
        item["step"] = (high - low) / draw(st.integers(1, 20))
    return item


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_valid_spaces_sample_validly_and_round_trip(data):
    n = data.draw(st.integers(1, 5))
    items = [data.draw(valid_items(i)) for i in range(n)]
    doc = {f"a{i}": 0 for i in range(n)}
    doc["search"] = items
    space = parse_search_space(doc, FILE)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    for _ in range(20):
        values = space.sample(rng)
        assert space.contains(values), values
        point = space.encode(values)
        assert np.all((point >= 0) & (point <= 1))
        again = space.decode(point)
        for p in space.params:
            if p.kind == "float":
                assert again[p.name] == pytest.approx(values[p.name], rel=1e-9, abs=1e-9)
            else:
                assert again[p.name] == values[p.name]


broken = st.one_of(
    st.fixed_dictionaries({"args": st.just("a0"), "type": st.sampled_from(["float", "int"]),
                           "targets": st.lists(floats, max_size=4).filter(lambda t: len(t) != 2 or t[0] >= t[1])}),
    st.fixed_dictionaries({"args": st.just("a0"), "type": st.just("enum"), "targets": st.just([["x"], ["y"]]),
                           "weights": st.lists(st.floats(-5, 5), min_size=1, max_size=4).filter(
                               lambda w: len(w) != 2 or min(w) <= 0)}),
    st.fixed_dictionaries({"args": st.sampled_from(["zz", "", 3]), "type": st.just("float"), "targets": st.just([0, 1])}),
    st.fixed_dictionaries({"args": st.just("a0"), "type": st.text(max_size=6).filter(
        lambda t: t not in ("float", "int", "enum", "bool")), "targets": st.just([0, 1])}),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.integers(), st.text(max_size=8), st.none(),
)


@settings(max_examples=120, deadline=None)
@given(broken)
def test_random_invalid_items_always_give_a_path_never_a_traceback(item):
    with pytest.raises(ConfigError) as err:
        parse_search_space({"a0": 0, "search": [item]}, FILE)
    assert err.value.path.startswith("$.search[0]")
    assert "\n" not in str(err.value)


def test_neighbours_of_a_point_near_an_end_are_reflected_not_piled_on_the_end():
    """The acquisition's local candidates: a step past an end folds back inside, so a
    neighbour of a point near an end is not the end itself about half the time."""
    space = parse_search_space({"lr": 0.01, "p": 0.5, "search": [
        {"args": "lr", "type": "float", "targets": [1e-5, 1e-1], "log": True},
        {"args": "p", "type": "float", "targets": [0, 1]}]}, Path("config_train.json"))
    rng = np.random.default_rng(0)
    near = {"lr": 0.09, "p": 0.99}
    moved = [space.perturb(near, rng, 0.05, 0.0) for _ in range(2000)]
    ps = np.array([m["p"] for m in moved])
    lrs = np.array([m["lr"] for m in moved])
    assert np.all((ps >= 0) & (ps <= 1)) and np.all((lrs >= 1e-5) & (lrs <= 1e-1 * (1 + 1e-12)))
    assert np.mean(ps == 1.0) < 0.01 and np.mean(np.isclose(lrs, 1e-1)) < 0.01
    assert np.mean(ps > 0.95) > 0.5  # still neighbours: folded back close to where they crossed
