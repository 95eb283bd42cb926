"""The error types of bad input, in one place with no imports, so that any module can raise
them (repro.config re-exports ConfigError; repro.io re-exports DataError)."""


class ConfigError(ValueError):
    """A config that cannot work; the message names the key at fault."""
