"""The engine: runs checks concurrently and produces results."""
