"""Screens of the netlens app: main, packet detail, help, dialogs."""
