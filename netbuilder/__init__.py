"""netbuilder: autoencoders written as JSON — train, cluster the latent space, find anomalies, look at the result."""
from __future__ import annotations

__version__ = "0.1.0"
