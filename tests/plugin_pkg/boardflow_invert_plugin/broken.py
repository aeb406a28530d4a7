"""A plugin module that fails on import, as a plugin with a missing dependency would."""

raise ImportError("boardflow_invert_plugin.broken needs a package that is not installed (on purpose)")
