import pytest

import sparseattn
from sparseattn.core import InvalidParameterError
from tests.helpers import random_qkv


def test_methods_lists_names_and_parameters():
    ms = sparseattn.list_methods()
    assert {"dense", "topk", "threshold", "block_topk"} <= set(ms)
    topk = {p.name: p for p in ms["topk"].parameters}
    assert set(topk) == {"ratio", "k", "min_keys"}
    assert topk["ratio"].constraints == "> 0, <= 1"
    assert ms["threshold"].parameters[0].default == 5.0
    assert ms["dense"].parameters == ()


def test_unknown_method_lists_the_available_ones():
    q, k, v = random_qkv()
    with pytest.raises(InvalidParameterError, match=r"unknown method 'sofa2'; available methods: ") as err:
        sparseattn.attention(q, k, v, "sofa2")
    listed = str(err.value).split("available methods: ")[1].split(", ")
    assert listed == sorted(sparseattn.list_methods()) and {"sofa", "pade", "sanger", "topk"} <= set(listed)


def test_unknown_parameter_lists_the_valid_ones():
    q, k, v = random_qkv()
    with pytest.raises(
        InvalidParameterError, match=r"unknown parameter.*'radius'.*valid parameters: ratio, k, min_keys"
    ):
        sparseattn.attention(q, k, v, "topk", radius=3)
    with pytest.raises(InvalidParameterError, match=r"valid parameters: \(none\)"):
        sparseattn.attention(q, k, v, "dense", ratio=0.5)


def test_parameters_are_recorded_in_the_trace():
    q, k, v = random_qkv()
    r = sparseattn.attention(q, k, v, "threshold", causal=True, delta=2.5)
    assert r.trace.meta["params"] == {"delta": 2.5} and r.trace.meta["method"] == "threshold"


def test_package_docstring_example():
    import doctest

    failures, _ = doctest.testmod(sparseattn, verbose=False)
    assert failures == 0
