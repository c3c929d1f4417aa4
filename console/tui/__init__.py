"""The Textual app: everything in the package that imports textual."""
