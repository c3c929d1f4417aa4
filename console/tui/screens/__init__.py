"""Modal screens of the console: forms for the leader's actions, confirmation, run picker, help."""
