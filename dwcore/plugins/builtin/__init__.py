"""dwcore's own plugins, registered through the ``dwcore.plugins`` entry-point group."""
