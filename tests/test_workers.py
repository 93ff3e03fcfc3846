import pytest

from automl_cli.errors import UsageError
from automl_cli.workers import (Worker, check_against_devices, count_gpus, device_env, parse_workers, read_mask,
                                 visible_gpus)


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


@pytest.mark.parametrize("mask, kept, bad, hidden", [
    ("0,1", ["0", "1"], None, []),
    ("1, 0", ["1", "0"], None, []),
    ("GPU-8f2a,1", ["GPU-8f2a", "1"], None, []),
    ("0,-1,1", ["0"], "-1", ["1"]),
    ("-1", [], "-1", []),
    ("", [], "", []),
    ("0,gpu1,1", ["0"], "gpu1", ["1"]),
    ("7", [], "7", []),  # with 2 GPUs: an ordinal the machine lacks is invalid too
    ("1,2,0", ["1"], "2", ["0"]),
])
def test_a_mask_is_read_as_cuda_reads_it_up_to_its_first_invalid_entry(mask, kept, bad, hidden):
    assert read_mask(mask, 2) == (kept, bad, hidden)


def test_visible_gpus_refuses_a_gpu_the_machine_lacks_and_warns_when_cuda_hides_entries():
    assert visible_gpus({}, 2) == (2, None)
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1"}, 2) == (1, None)
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}, 2) == (0, None)  # the usual way of saying "no GPU"
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, 2) == (0, None)
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "7"}, None) == (0, None)  # no nvidia-smi: no GPU to check
    count, warning = visible_gpus({"CUDA_VISIBLE_DEVICES": "0,-1,1"}, 2)
    assert count == 1 and warning == ("CUDA_VISIBLE_DEVICES=0,-1,1: CUDA stops reading at the invalid entry '-1', "
                                      "so it shows GPU(s) 0 only and hides 1")
    with pytest.raises(UsageError, match=r"CUDA_VISIBLE_DEVICES=7 names GPU 7, but this machine has 2 GPU\(s\)"):
        visible_gpus({"CUDA_VISIBLE_DEVICES": "7"}, 2)
    with pytest.raises(UsageError, match="names GPU 2"):
        visible_gpus({"CUDA_VISIBLE_DEVICES": "0,2"}, 2)
    # jobs get only the entries CUDA keeps: W1's GPU 0 is device 0, never "0,-1,1"'s hidden 1
    assert device_env(Worker(1, (0,)), True, {"CUDA_VISIBLE_DEVICES": "0,-1,1"}) == "0"
