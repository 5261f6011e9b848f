"""filters subpackage."""
