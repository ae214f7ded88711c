"""A plugin module that cannot be imported (a dependency it needs is missing)."""

import dwfx_module_that_does_not_exist  # noqa: F401
