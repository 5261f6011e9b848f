"""glue subpackage."""
