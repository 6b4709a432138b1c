"""The HTTP API: ``create_app(settings)`` (see ``api.app``)."""
