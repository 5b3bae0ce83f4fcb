"""An untrusted server is skipped with the reason it is untrusted, also when (as always in
production) the collector left it out of the optimizer input and so out of the solution."""

from __future__ import annotations

from actuator.plan import plan_updates
from contract.update import ActionKind
from tests.unit.actuator.fakes import PLACEMENT, deployment, server, settings, solution


def test_untrusted_server_absent_from_the_solution_says_why() -> None:
    untrusted = server(trusted=False, load_source="none", notes=["prometheus query completions failed"])
    (action,) = plan_updates(
        solution(),
        [untrusted],
        PLACEMENT,
        {("team-a", "llama"): deployment()},
        settings(),
        0.0,
    )
    assert action.kind is ActionKind.SKIP and action.patch is None
    assert action.reasons[0] == "data not trusted (load source: none)", action.reasons
    assert "prometheus query completions failed" in action.reasons
