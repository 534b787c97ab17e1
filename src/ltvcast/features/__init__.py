"""L2: deterministic transforms at an as-of time (nothing here reads past ``as_of``)."""
