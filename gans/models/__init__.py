"""Network families; importing a family registers its generator and discriminator."""

from gans.models import dcgan, stylegan_lite  # noqa: F401
