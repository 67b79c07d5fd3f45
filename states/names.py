"""Every state name of the workflows, spelled once.

The stage modules build their tables from these names and export them, with the
named sets the acts use (`states.review.IN_REVIEW`, `states.award.LISTED`, ...);
outside `states/` code takes a state's name from its stage module and never
spells one (tests/test_layers.py). The names live in this one leaf module so a
stage may name a later stage's states without an import cycle. Two workflows
may share a name (both have a `draft`): a name is the value of the state column.
"""
from __future__ import annotations

# declaration (公开申报, 形式审查): both workflows
DRAFT = "draft"
DECLARED = "declared"
WITHDRAWN = "withdrawn"
LAPSED = "lapsed"
ELIGIBLE = "eligible"
INELIGIBLE = "ineligible"

# review (专家评审): both workflows; the star rating's results
UNDER_REVIEW = "under_review"
REVIEWED = "reviewed"
RATED = "rated"
UNRATED = "unrated"

# competition (公平竞争); steady support: a continuation funded without competing
RANKED = "ranked"
CONTINUING = "continuing"

# award (审定, 公示, 立项); the star award
PROPOSED = "proposed"
NOT_PROPOSED = "not_proposed"
IN_NOTICE = "in_notice"
OBJECTION_RAISED = "objection_raised"
AWARDED = "awarded"
REJECTED = "rejected"
STARRED = "starred"
NOT_RATED = "not_rated"
REVOKED = "revoked"
MODEL = "model_society"
MODEL_REVOKED = "model_revoked"

# assessment (绩效考核) and its outcome (动态管理)
FUNDED = "funded"
ASSESSMENT_DUE = "assessment_due"
ASSESSED = "assessed"
CONTINUED = "continued"
ADJUSTED = "adjusted"
TERMINATED = "terminated"
COMPLETED = "completed"
