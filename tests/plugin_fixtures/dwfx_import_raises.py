"""A plugin module that raises while it is imported."""

raise RuntimeError("plugin module is broken at import time")
