"""paperscope: conference programs and paper feeds in one searchable, personal catalogue."""

__version__ = "0.1.0"
