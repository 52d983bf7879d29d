"""gans: recipe-driven GAN training on PyTorch Lightning.

From Python (docs/api.md walks through it):

    import gans

    G = gans.load("runs/quickstart/version_0/checkpoints/last.ckpt")
    G.grid(16, seed=0).save("grid.png")          # or G.sample(16) -> (16, C, H, W) tensor

    run = gans.train("recipes/quickstart.yaml", overrides=["train.steps=300"])
    gans.evaluate(run.last_checkpoint, metrics=["fid"], num_fake=2000)

    module = gans.GANModule.from_recipe("recipes/quickstart.yaml")   # your own Trainer
    data = gans.GANDataModule.from_recipe("recipes/quickstart.yaml")

Every command-line verb is a function here: train, evaluate, benchmark (gans bench), export,
card, inspect, registered (gans recipe --list), Recipe.load (gans recipe). Errors are
`GansError`s with one-line messages; `RecipeError`, `CheckpointError` and `TrainingDiverged`
are the kinds a script may want to catch apart.

`import gans` stays light: torch and Lightning load when a name below is first used.
"""

__version__ = "0.1.0"

# name -> the module that defines it; resolved on first use (PEP 562), so that the command
# line, which imports this package for every command, starts without torch.
_SURFACE = {
    "load": "gans.api", "LoadedGenerator": "gans.api", "train": "gans.api", "Run": "gans.api",
    "evaluate": "gans.api", "benchmark": "gans.api", "export": "gans.api", "card": "gans.api",
    "inspect": "gans.api", "registered": "gans.api", "project": "gans.api",
    "Recipe": "gans.recipe",
    "GANModule": "gans.training.module", "GANDataModule": "gans.training.datamodule",
    "GansError": "gans.errors", "RecipeError": "gans.errors", "CheckpointError": "gans.errors",
    "TrainingDiverged": "gans.training.module",
}

__all__ = ["__version__", *_SURFACE]


def __getattr__(name: str):
    if name not in _SURFACE:
        raise AttributeError(f"module 'gans' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(_SURFACE[name]), name)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
