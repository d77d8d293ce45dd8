"""inbox: every incoming fact stored raw first, then processed by a job into events."""
