import pytest

from automl_cli.errors import UsageError
from automl_cli.workers import Worker, check_against_devices, count_gpus, device_env, parse_workers


@pytest.mark.parametrize("spec, expected", [
    ("0", [(1, (0,))]),
    ("0:1", [(1, (0,)), (2, (1,))]),
    ("0,1:2", [(1, (0, 1)), (2, (2,))]),
    ("0:0:1:1", [(1, (0,)), (2, (0,)), (3, (1,)), (4, (1,))]),
])
def test_worker_specs_parse_into_named_workers_with_gpu_lists(spec, expected):
    workers = parse_workers(spec)
    assert [(w.index, w.gpus) for w in workers] == expected
    assert [w.name for w in workers] == [f"W{i}" for i in range(1, len(expected) + 1)]


@pytest.mark.parametrize("spec", ["", ":", "0:", "0,,1", "a", "0;1", "-1", "0,1:x", "1,1"])
def test_malformed_worker_specs_are_usage_errors(spec):
    with pytest.raises(UsageError) as err:
        parse_workers(spec)
    assert err.value.exit_code == 2
    assert "worker spec" in str(err.value)


def test_gpu_ids_map_through_the_inherited_mask():
    worker = Worker(1, (0, 1))
    assert device_env(worker, True, {}) == "0,1"
    assert device_env(worker, True, {"CUDA_VISIBLE_DEVICES": "3,5"}) == "3,5"
    assert device_env(Worker(2, (1,)), True, {"CUDA_VISIBLE_DEVICES": "3,5"}) == "5"
    assert device_env(worker, False, {}) == ""


def test_an_empty_mask_means_no_gpu_and_unknown_ids_are_refused():
    assert count_gpus({"CUDA_VISIBLE_DEVICES": ""}) == 0
    with pytest.raises(UsageError, match="W2 asks for GPU 2 but only 2 GPU"):
        check_against_devices(parse_workers("0,1:2"), 2)
