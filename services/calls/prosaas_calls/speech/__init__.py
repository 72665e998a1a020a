"""The offline voice stack: speech synthesis (espeak-ng) and recognition (pocketsphinx)."""
