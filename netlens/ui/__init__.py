"""The Textual app (the only package that imports textual): ``netlens serve``'s live view."""
