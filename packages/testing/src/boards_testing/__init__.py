"""Test support for the boards workspace.

- :mod:`boards_testing.images`: the image name to use per kind, from arguments or the
  environment (``BOARDS_<KIND>_IMAGE``).
- :mod:`boards_testing.plugin`: the pytest plugin (fixtures for images, Docker, PostgreSQL and
  Redis), loaded automatically through the ``pytest11`` entry point.
"""

from boards_testing.images import DEFAULTS, KINDS, ImageNotSet, env_var, image_name

__all__ = ["DEFAULTS", "KINDS", "ImageNotSet", "env_var", "image_name"]
