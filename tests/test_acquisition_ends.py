"""The acquisition's refinement keeps a number at an end of its range only where the model's
predicted loss falls toward that end (issue #22 item 2): an end reached by the model's
spread alone goes back to where the climb started."""
import numpy as np
import torch

from automl_cli.algorithms.models.acquisition import _lbfgs


def climbs_to_the_top_of_x0(x: torch.Tensor) -> torch.Tensor:
    """An acquisition rising toward x0 = 1, peaked at x1 = 0.3."""
    return x[:, 0] - (x[:, 1] - 0.3) ** 2


def test_without_the_mean_the_climb_ends_at_the_end():
    out = _lbfgs(climbs_to_the_top_of_x0, np.array([0.5, 0.5]), [0, 1])
    assert out[0] == 1.0 and abs(out[1] - 0.3) < 1e-4


def test_an_end_where_the_predicted_loss_rises_goes_back_to_its_start_and_the_rest_still_climbs():
    start = np.array([0.5, 0.5])
    out = _lbfgs(climbs_to_the_top_of_x0, start, [0, 1], mean=lambda x: x[:, 0])  # worse toward x0 = 1
    assert out[0] == 0.5
    assert abs(out[1] - 0.3) < 1e-4


def test_an_end_where_the_predicted_loss_falls_is_kept():
    out = _lbfgs(climbs_to_the_top_of_x0, np.array([0.5, 0.5]), [0, 1], mean=lambda x: -x[:, 0])
    assert out[0] == 1.0 and abs(out[1] - 0.3) < 1e-4


def test_the_lower_end_is_judged_from_just_above_it():
    # the acquisition falls toward x0 = 0; the loss is lowest at 0.03 and higher at 0 than at 0.05
    def mean(x):
        return (x[:, 0] - 0.03) ** 2
    out = _lbfgs(lambda x: -x[:, 0], np.array([0.4]), [0], mean=mean)
    assert out[0] == 0.4  # 0.03^2 at the end is not below 0.02^2 at 0.05
    out = _lbfgs(lambda x: -x[:, 0], np.array([0.4]), [0], mean=lambda x: x[:, 0])
    assert out[0] == 0.0


def test_a_start_already_at_an_end_is_left_to_the_climb():
    # only climbs onto an end are judged: a candidate that was there already keeps its place
    out = _lbfgs(climbs_to_the_top_of_x0, np.array([1.0, 0.5]), [0, 1], mean=lambda x: x[:, 0])
    assert out[0] == 1.0
