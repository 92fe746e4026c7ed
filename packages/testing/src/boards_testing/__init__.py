"""Test support for the boards workspace.

- :mod:`boards_testing.images`: which image to use per kind (official or local stand-in);
  the ``boards-images`` command.
- :mod:`boards_testing.plugin`: the pytest plugin (fixtures for images, Docker, PostgreSQL and
  Redis), loaded automatically through the ``pytest11`` entry point.
"""

from boards_testing.images import KINDS, ImageError, Resolution, resolution, resolve

__all__ = ["KINDS", "ImageError", "Resolution", "resolution", "resolve"]
