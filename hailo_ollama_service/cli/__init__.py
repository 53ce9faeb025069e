"""The full command line: a table of commands (``commands``), their thin
handlers (``handlers``), the parser and error handling (``main``), and the
man page and completion generated from the table (``docs``)."""
