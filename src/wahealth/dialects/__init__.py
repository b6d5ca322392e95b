"""Wire dialects over the one health core; they never import each other."""
