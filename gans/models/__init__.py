"""Network families; importing a family registers its generator and discriminator."""

from gans.models import dcgan, r3gan_lite, stylegan_lite  # noqa: F401
