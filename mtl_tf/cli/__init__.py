"""The `mtl` command line: one click group per domain, a thin layer over the library."""
