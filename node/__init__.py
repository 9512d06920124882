"""Commons Node: the server a sharing community runs for itself."""

__version__ = "0.1.0"
