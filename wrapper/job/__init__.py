"""The job door: one call of the handler with resolved inputs, its return value kept as
results and outputs, and a run status document (DESIGN §5)."""
