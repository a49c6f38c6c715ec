"""Qt-free, VTK-free model of a study and everything computed on it."""
