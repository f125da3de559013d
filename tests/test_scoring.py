"""Best-of-N and mean-of-N on hand-made tensors."""

import torch

from dfbench.scoring import best_of, feature_loss, mean_of, score_rollouts


def test_feature_loss_is_smooth_l1_with_beta_01_averaged_over_tokens_and_channels():
    pred = torch.zeros(1, 2, 2)
    target = torch.tensor([[[0.05, 1.0], [0.0, -0.2]]])
    # 0.5*x^2/beta below beta, |x| - beta/2 above
    expected = (0.5 * 0.05**2 / 0.1 + (1.0 - 0.05) + 0 + (0.2 - 0.05)) / 4
    assert torch.allclose(feature_loss(pred, target), torch.tensor([expected]))


def test_best_of_chooses_by_the_last_step_and_keeps_the_whole_rollout():
    targets = torch.zeros(2, 2, 1, 1)
    preds = torch.zeros(2, 3, 2, 1, 1)
    preds[:, 0, 0] = 0.0  # sample 0 is perfect at step 0 ...
    preds[:, 0, 1] = 5.0  # ... but far at the last step
    preds[:, 1, 0] = 9.0
    preds[:, 1, 1] = 0.1
    preds[:, 2, 1] = 1.0
    preds[1, 2, 1] = 0.0  # for crop 1 sample 2 is exact at the last step
    chosen, index = best_of(preds, targets)
    assert index.tolist() == [1, 2]
    assert torch.equal(chosen[0], preds[0, 1]) and torch.equal(chosen[1], preds[1, 2])


def test_mean_of_averages_features_before_any_head():
    preds = torch.tensor([1.0, 3.0, 8.0]).reshape(1, 3, 1, 1, 1)
    assert mean_of(preds).item() == 4.0


def test_deterministic_models_are_scored_single():
    preds = torch.randn(2, 1, 3, 4, 5)
    scored = score_rollouts(preds, torch.zeros(2, 3, 4, 5), stochastic=False)
    assert list(scored) == ["single"] and torch.equal(scored["single"], preds[:, 0])


def test_stochastic_models_get_best_and_mean():
    preds = torch.randn(2, 4, 3, 4, 5)
    scored = score_rollouts(preds, torch.zeros(2, 3, 4, 5), stochastic=True)
    assert set(scored) == {"best", "mean"}
