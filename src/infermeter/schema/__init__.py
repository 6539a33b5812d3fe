"""The documents infermeter writes (results.json, sweep.json), typed for every layer that reads
them. Declarations and a reader or two: this package imports nothing of infermeter, so the
lowest layer may name them."""
