"""Rigs: a real bench or an emulated board behind one interface."""
