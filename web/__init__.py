"""The portal: the web door into the same house as the command line.

Pages are thin: each reads through `lifecycle.acts.views` (what a role may see)
and acts through the same act functions and `engine.advance` the CLI uses, so
the rules stay in `states/` and every write is audited under the logged-in
account. Nothing in `lifecycle`, `states` or `notifications` imports this package.
"""
