"""Foreign API faces: each a thin translator from another service's contract onto gnomon."""
