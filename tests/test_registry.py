import pytest

from gans.errors import GansError
from gans.recipe import validate
from gans.registry import GENERATORS, Registry
from gans.models.build import build_networks


def test_unknown_name_lists_known_names():
    with pytest.raises(GansError, match=r"unknown generator 'nope'; known: dcgan"):
        GENERATORS.get("nope")


def test_registering_a_name_twice_is_refused():
    table = Registry("thing")
    table.register("a")(object)
    with pytest.raises(ValueError):
        table.register("a")(object)


def test_dotted_path_plugs_in_a_users_class():
    recipe = validate({"model": {"generator": {"name": "user_models.TinyGenerator",
                                               "latent_dim": 6}},
                       "data": {"resolution": 16, "channels": 1}})
    generator, _ = build_networks(recipe)
    assert type(generator).__name__ == "TinyGenerator"
    assert generator.latent_dim == 6


@pytest.mark.parametrize("path, fragment", [
    ("no_such_module.Thing", "cannot import module 'no_such_module'"),
    ("user_models.Missing", "has no 'Missing'"),
])
def test_bad_dotted_paths_are_clear(path, fragment):
    with pytest.raises(GansError, match=fragment):
        GENERATORS.get(path)


def test_a_generator_missing_part_of_the_interface_is_named_in_one_line(tmp_path, image_folder,
                                                                          capsys):
    import yaml

    from conftest import tiny_recipe
    from gans.cli import main

    raw = tiny_recipe(tmp_path, image_folder)
    raw["model"]["generator"] = {"name": "user_models.NoLatentDim"}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.generator" in err and "latent_dim" in err, err
    assert not (tmp_path / "runs").exists()
