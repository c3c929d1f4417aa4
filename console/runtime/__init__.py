"""The headless runtime: the watcher, its healing, the launcher and the simulated worker. Imports no Textual."""
