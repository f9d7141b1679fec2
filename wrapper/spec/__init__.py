"""Run spec documents: the pydantic models and how documents are read and validated."""
