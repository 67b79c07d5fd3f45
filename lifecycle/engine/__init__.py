"""The engine above states/: advance a batch (engine), one Machine per workflow (machine),
who may fire a move (permissions), and the anchoring act that queues its mail."""
