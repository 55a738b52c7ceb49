"""The write side: command models, one handler per command, the application that saves them."""
