"""Prediction: an engine model fitted from measured runs (``fit``), a discrete-event
simulation of the engine's batching under a load (``simulate``), the figures a simulation
gives (``summary``), and an engine model carried to other hardware (``hardware``). Pure:
the files are :mod:`infermeter.run.fit`'s and :mod:`infermeter.run.predict`'s."""
