"""Widgets of the netlens app: each a view over one data source."""
