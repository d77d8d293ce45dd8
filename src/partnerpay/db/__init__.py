"""Engine, sessions, base model and migrations."""
