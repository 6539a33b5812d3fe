"""Test instruments that ship with infermeter (see docs/emulator.md)."""
