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
