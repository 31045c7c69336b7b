"""The shipped ``synth-activity2vec`` weights (partwise/models/data/synth_activity2vec.pt, trained with
configs/synth_activity2vec_small.yaml on ``partwise synth --seed 103 --videos 24``) on synthetic data of a seed it
never saw: PaSta instance mAP well above the frequency prior, with and without the no_interaction classes."""
from pathlib import Path

import pytest

from partwise.models import weights
from partwise.models.activity2vec import Activity2Vec

ROOT = Path(__file__).parents[2]
CONFIG = ROOT / "configs" / "synth_activity2vec_small.yaml"
SHIPPED = ROOT / "partwise" / "models" / "data" / "synth_activity2vec.pt"


@pytest.fixture(scope="module")
def fresh_synth(tmp_path_factory) -> Path:
    from partwise.synth.generator import SynthConfig, generate

    root = tmp_path_factory.mktemp("synth_a2v") / "data"
    generate(root, SynthConfig(seed=7, videos=6))  # 320x240, 10 s: the training data's geometry
    return root


def test_shipped_checkpoint_is_the_light_model():
    assert SHIPPED.stat().st_size <= 3 * 2**20
    loaded = weights.load("synth-activity2vec", ("activity2vec",))
    assert Path(loaded.path).resolve() == SHIPPED.resolve()
    assert isinstance(loaded.model, Activity2Vec) and not loaded.model.training
    config = loaded.model.config
    assert (config.trunk, config.trunk_width, config.hidden, config.skeleton_size) == ("resnet18", 8, 32, 32)
    assert loaded.extra["skeletons"] is True
    assert loaded.model.language_matrix.abs().sum() > 0  # the shipped MiniLM matrix is attached for f_pasta


def test_shipped_checkpoint_beats_the_frequency_prior_on_a_fresh_seed(fresh_synth):
    from partwise.train.tasks import load_task

    # the task's own evaluation: GT person boxes of the val split, Activity2Vec instance AP (partwise.eval.pasta),
    # prior = each class's frequency among the train split's persons
    runner = load_task(CONFIG, [f"data.root={fresh_synth}", f"init={SHIPPED}"])
    train_ds, val_ds = runner.datasets()
    net = weights.load("synth-activity2vec", ("activity2vec",)).model
    result = runner.evaluate(runner.wrap(net), train_ds, val_ds, None)["instance"]
    assert result["classes"] >= 12
    # measured on seed 7: 92.8 vs 59.0, without no_interaction 87.8 vs 41.5
    assert result["mAP"] > result["prior_mAP"] + 0.2
    without = result["model"]["pasta_mAP_without_no_interaction"]
    prior_without = result["frequency_prior"]["pasta_mAP_without_no_interaction"]
    assert without > prior_without + 0.3
    # the init path (strict load through the config's model section) gives the same model
    again = runner.evaluate(runner.build_model(), train_ds, val_ds, None)["instance"]
    assert again["mAP"] == pytest.approx(result["mAP"])


def test_train_backbone_trains_the_light_trunk_from_scratch(fresh_synth, tmp_path):
    import torch

    from partwise.errors import ConfigError
    from partwise.models.checkpoint import load_model
    from partwise.train.tasks import load_task, run_task

    frozen = load_task(CONFIG, [f"data.root={fresh_synth}", "train_backbone=false"]).build_model().train()
    assert not any(p.requires_grad for p in frozen.net.backbone.parameters())
    assert not frozen.net.backbone.training and frozen.net.fc7_parts.training
    out = tmp_path / "run"
    runner = load_task(CONFIG, [f"data.root={fresh_synth}", f"run.out_dir={out}", "run.max_steps=3"])
    model = runner.build_model().train()
    assert all(p.requires_grad for p in model.net.backbone.parameters()) and model.net.backbone.training
    before = model.net.backbone.body.conv1.weight.detach().clone()
    assert torch.equal(runner.build_model().net.backbone.body.conv1.weight, before)  # seeded: run_task starts here
    run_task(runner, progress=False, evaluate=False)
    trained = load_model(out / "model.pt")
    assert not torch.equal(trained.backbone.body.conv1.weight, before)
    with pytest.raises(ConfigError, match="train_backbone"):
        load_task(CONFIG, [f"data.root={fresh_synth}", "stage=verb"])
