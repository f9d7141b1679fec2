"""Deploy manifests rendered from a run spec (DESIGN §9)."""
