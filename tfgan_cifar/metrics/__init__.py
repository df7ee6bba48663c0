"""Quality metrics: Inception features, FID/KID, cached reference statistics, evaluators."""
