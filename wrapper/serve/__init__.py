"""The serve door: HTTP events on gunicorn + uvicorn, admin endpoints in the master."""
