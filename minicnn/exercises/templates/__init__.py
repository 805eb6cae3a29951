"""Exercise templates: each file is the learner's stub and the solution at once (see `spec.Exercise`)."""
