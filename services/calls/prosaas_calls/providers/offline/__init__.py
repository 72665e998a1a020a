"""The offline voice provider: no network, no keys — pocketsphinx hears, espeak-ng speaks, and a
deterministic receptionist dialog books through the same tools as the model-driven path."""
