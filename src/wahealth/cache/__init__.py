"""Report cache and request coalescing: interface plus memory and Redis backends."""
