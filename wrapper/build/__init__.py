"""The build action: a function spec → a build context (Containerfile, code, wheels) → an image
(DESIGN §8)."""
