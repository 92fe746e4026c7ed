"""The HTTP API (FastAPI). ``boards.api.app:app`` is what uvicorn serves."""
