"""Network families; importing a family registers its generator and discriminator."""

from gans.models import dcgan  # noqa: F401
