"""Reusable Textual widgets for the console. They render view models from store.models and post
messages; none of them opens the database."""
