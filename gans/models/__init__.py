"""Network families, one file each; the registry imports every module here, so a family
registers its generator and discriminator by being a file in this package."""
