"""Pure data and rules, free of I/O."""
