"""The explorer: the web interface and JSON API for brand partners, on top of serving.

``explorer.core`` indexes a model and a data directory once and answers briefs and
creator profiles with serving's own functions; ``explorer.app`` is the FastAPI
application (pages and API); ``python -m explorer`` loads and serves them.
"""
