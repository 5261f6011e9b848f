"""arch subpackage."""
