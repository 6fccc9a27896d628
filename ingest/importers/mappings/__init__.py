"""Column mappings shipped with queuecast for ``queuecast import cdr --mapping`` (YAML)."""
