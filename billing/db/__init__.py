"""The SQL side of the store: table definitions, engine set-up, one component per table group."""
