"""Reports: Markdown tables and image grids from benchmark results."""
