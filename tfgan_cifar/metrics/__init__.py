"""Quality metrics: Inception and reference-classifier features, FID/KID, precision/recall/density/coverage, class accuracy, cached reference statistics, evaluators."""
