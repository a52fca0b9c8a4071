"""Course tools: the student-notebook builder, the scoring pytest plugin, the ``grade`` CLI."""
