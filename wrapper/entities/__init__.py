"""Entities of the job door: keys, the objects handed to handlers, and the stores behind them."""
