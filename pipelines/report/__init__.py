"""The public weekly report: a static site rendered from the published weeks'
aggregates and manifests (``portcensus render``; see render.py)."""
