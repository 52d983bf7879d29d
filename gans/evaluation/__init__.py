"""Evaluation: Inception features, FID/KID, precision/recall, coverage, classifiers, and
`evaluate`, which records the protocol of every figure."""
