"""What a batch's conditions and effects compute, apart from who calls them.

- eligibility: societies barred from a call by an earlier project's failure;
- ranking: aggregate the experts' totals, normalise, rank per category, cut by budget;
- payments: the payment plan and the writes effects make on it (release, cut, cancel);
- grades: a score's grade and the outcome a grade proposes;
- assignment: who reviews what, the conflict rule and the plan.

Rules import only lifecycle.core's basics (models, callconfig, audit, ...), never
states/, the acts or the engine; they spell no state name: the stage modules in
states/ pass the states a rule needs (e.g. `states.competition.RANKABLE`).
"""
