"""Training: the LightningModule that runs an objective's phases, the data module, the clock,
callbacks and the run directory."""
