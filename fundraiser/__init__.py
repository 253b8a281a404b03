"""Launch kit for member-owned co-operatives."""

__version__ = "0.1.0"
