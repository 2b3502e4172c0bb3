"""Training / testing machinery on top of mmengine (hooks)."""
