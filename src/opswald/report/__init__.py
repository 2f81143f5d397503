"""Reports: the terminal summary (JSON and HTML come later)."""
