"""Small pretrained classifiers that score what a generator produces (e.g. class coverage)."""
