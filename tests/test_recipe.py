
import pytest
import yaml

from conftest import REPO, write_recipe
from gans.cli import main
from gans.errors import GansError
from gans.recipe import load_recipe, validate

# recipes/bench/ holds benchmark suites, which tests/test_bench.py checks.
SHIPPED = sorted(p for p in (REPO / "recipes").rglob("*.yaml")
                 if p.parent.name != "bench")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_recipe_validates(path):
    recipe = load_recipe(path)
    assert recipe.train.steps >= 1


def test_the_full_dcgan_recipes_keep_their_measured_settings_whatever_the_quickstart_has():
    # fashion-mnist-rpgan.yaml extends the quickstart, whose batch, D width and learning rate
    # are tuned for its few minutes; the full run's published FIDs were measured with these,
    # whatever the quickstart has.
    for name in ("fashion-mnist-rpgan.yaml", "fashion-mnist-cond.yaml"):
        full = load_recipe(REPO / "recipes" / "dcgan" / name)
        assert full.train.batch_size == 64
        assert full.model.discriminator["width"] == 64
        assert full.optim.generator.lr == full.optim.discriminator.lr == pytest.approx(1e-3)
        assert (full.optim.schedule, full.optim.decay_start, full.optim.final_lr_scale) == (
            "linear", pytest.approx(0.7), pytest.approx(0.1))


def test_the_full_dcgan_recipes_build_the_generator_their_figures_were_measured_with():
    from gans.models.build import build_networks
    from gans.models.dcgan import ConditionalBatchNorm2d, SelfModulatedBatchNorm2d

    def norms(name):
        generator, _ = build_networks(load_recipe(REPO / "recipes" / "dcgan" / name))
        return {type(m) for m in generator.modules()
                if isinstance(m, (ConditionalBatchNorm2d, SelfModulatedBatchNorm2d))}

    assert norms("fashion-mnist-rpgan.yaml") == {SelfModulatedBatchNorm2d}
    unconditional = load_recipe(REPO / "recipes" / "dcgan" / "fashion-mnist-rpgan.yaml")
    assert unconditional.model.generator["full_res_width"] == 16
    # The conditional generator reads its class through the same modulation, beside z.
    conditional = load_recipe(REPO / "recipes" / "dcgan" / "fashion-mnist-cond.yaml")
    generator, _ = build_networks(conditional)
    assert norms("fashion-mnist-cond.yaml") == {SelfModulatedBatchNorm2d}
    assert generator.class_embedding.num_embeddings == 10
    assert conditional.model.generator["full_res_width"] == 0
    assert conditional.model.generator["width"] == 96


def test_the_quickstart_tracks_the_fid_of_its_last_step():
    recipe = load_recipe(REPO / "recipes" / "quickstart.yaml")
    assert recipe.metrics.fid_every > 0
    assert recipe.train.steps % recipe.metrics.fid_every == 0


def test_extends_deep_merges_and_names_the_run_after_the_child(tmp_path):
    write_recipe(tmp_path / "base.yaml", "train: {steps: 100, batch_size: 32}\n"
                                         "model: {generator: {name: dcgan, width: 16}}\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    child = write_recipe(sub / "child.yaml", "extends: ../base.yaml\ntrain: {steps: 7}\n")
    recipe = load_recipe(child)
    assert recipe.name == "child"
    assert recipe.train.steps == 7
    assert recipe.train.batch_size == 32  # kept from the base
    assert recipe.model.generator == {"name": "dcgan", "width": 16}


def test_overrides_parse_values_as_yaml(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", "train: {steps: 10}\n")
    recipe = load_recipe(path, ["train.steps=25", "optim.generator.lr=1e-3",
                                "model.generator.width=32", "trainer.precision=bf16-mixed"])
    assert recipe.train.steps == 25
    assert recipe.optim.generator.lr == pytest.approx(1e-3)
    assert recipe.model.generator["width"] == 32
    assert recipe.trainer["precision"] == "bf16-mixed"


def test_resolved_recipe_round_trips(tmp_path):
    recipe = load_recipe(REPO / "recipes" / "quickstart.yaml", ["train.steps=3"])
    again = validate(yaml.safe_load(yaml.safe_dump(recipe.to_dict())))
    assert again == recipe


@pytest.mark.parametrize("text, overrides, expected", [
    ("train: {stepz: 3}", [], ["'train.stepz'", "allowed:", "steps"]),
    ("bogus: 1", [], ["'bogus'", "allowed:", "model"]),
    ("train: {steps: many}", [], ["'train.steps'", "integer", "'many'"]),
    ("train: {steps: 0}", [], ["'train.steps'", "at least 1"]),
    ("train: {batch_size: -4}", [], ["'train.batch_size'", "at least 1"]),
    ("train: 5", [], ["'train'", "section"]),
    ("model: {generator: {name: nope}}", [], ["model.generator.name", "nope", "known: dcgan"]),
    ("model: {discriminator: {name: dcgan, depth: 3}}", [],
     ["model.discriminator.depth", "allowed for DCGANDiscriminator", "width"]),
    ("loss: {name: wasserstein-ish}", [], ["loss.name", "known:", "hinge", "wgan-gp"]),
    ("data: {name: imagenet}", [], ["data.name", "known:", "fashion-mnist", "folder"]),
    ("data: {channels: 2}", [], ["'data.channels'", "1 or 3"]),
    ("trainer: {max_steps: 5}", [], ["trainer.max_steps", "train.steps"]),
    ("trainer: {acelerator: cpu}", [], ["trainer.acelerator", "accelerator"]),
    ("train: {ema: 1.5}", [], ["'train.ema'", "[0, 1)"]),
    ("train: {ema_ramp: 1}", [], ["'train.ema_ramp'", "above 1"]),
    ("train: {standing_statistics: -64}", [], ["'train.standing_statistics'", "must not be negative"]),
    ("optim: {generator: {betas: [0.5]}}", [], ["optim.generator.betas", "two numbers"]),
    ("seed: 0", ["train.steps"], ["--set", "key.path=value"]),
    ("seed: 0", ["train.steps=[1"], ["--set", "not valid YAML"]),
    ("train: {steps: [unclosed", [], ["invalid YAML", "line 1"]),
    ("- a\n- b", [], ["mapping of sections"]),
    ("extends: missing.yaml", [], ["extends", "missing.yaml", "not found"]),
    ("loss: {name: rpgan, gamma: 0.1}", ["loss.name=hinge"],
     ["unknown key 'loss.gamma'", "allowed for Hinge", "--set 'loss={name: NAME}'"]),
])
def test_bad_recipes_give_one_line_errors_naming_file_and_key(tmp_path, text, overrides,
                                                              expected):
    path = write_recipe(tmp_path / "bad.yaml", text)
    with pytest.raises(GansError) as info:
        load_recipe(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    if "--set" not in expected:
        assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_extends_cycle_is_an_error(tmp_path):
    write_recipe(tmp_path / "a.yaml", "extends: b.yaml\n")
    write_recipe(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(GansError, match="cycle"):
        load_recipe(tmp_path / "a.yaml")


def test_cli_recipe_prints_resolved_yaml(capsys):
    assert main(["recipe", str(REPO / "recipes" / "quickstart.yaml"),
                 "--set", "train.steps=42"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["train"]["steps"] == 42
    assert printed["name"] == "quickstart"


def test_cli_recipe_error_is_one_line_exit_2(tmp_path, capsys):
    path = write_recipe(tmp_path / "bad.yaml", "train: {stepz: 3}\n")
    assert main(["recipe", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.stepz" in err


def test_cli_recipe_list_names_everything(capsys):
    assert main(["recipe", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("dcgan", "non-saturating", "hinge", "wgan-gp", "least-squares",
                 "fashion-mnist", "folder", "cifar10"):
        assert name in out


def test_every_recipe_key_is_documented():
    """docs/recipes.md is the reference: a key added to the schema must appear there."""
    import dataclasses
    import typing

    from gans.recipe import Recipe

    text = (REPO / "docs" / "recipes.md").read_text()
    missing = []
    for section, hint in typing.get_type_hints(Recipe).items():
        if not dataclasses.is_dataclass(hint):
            missing += [] if f"`{section}`" in text else [section]
            continue
        for name, sub in typing.get_type_hints(hint).items():
            names = ([f"`{f.name}`" for f in dataclasses.fields(sub)]
                     if dataclasses.is_dataclass(sub) else [f"`{section}.{name}`"])
            missing += [n for n in names if n not in text]
    assert not missing, f"undocumented recipe keys: {missing}"


def test_the_error_shown_in_docs_recipes_is_the_one_train_prints(tmp_path, monkeypatch, capsys):
    documented = [line for line in (REPO / "docs" / "recipes.md").read_text().splitlines()
                  if line.startswith("gans train: error: recipes/my.yaml")]
    assert len(documented) == 1
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipes").mkdir()
    write_recipe(tmp_path / "recipes" / "my.yaml", "train:\n  stepz: 3\n")
    assert main(["train", "recipes/my.yaml"]) == 2
    assert capsys.readouterr().err.strip() == documented[0]


def test_a_section_set_whole_switches_kinds_without_the_old_keys(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", "loss: {name: rpgan, gamma: 0.1, reg_every: 4}\n")
    recipe = load_recipe(path, ["loss={name: hinge}"])
    assert recipe.loss["name"] == "hinge"
    assert "gamma" not in recipe.loss and "reg_every" not in recipe.loss
