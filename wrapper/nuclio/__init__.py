"""The nuclio door: the Nuclio processor's wrapper protocol (NUCLIO_PROTOCOL.md)."""
