"""Detectors, registered explicitly: adding one is a module plus a line in ``build``."""

from __future__ import annotations

from mailwarden.detect import (
    brute_force,
    compromised_account,
    distributed_attack,
    open_relay,
    password_spray,
    unauthenticated_injection,
    web_script,
)
from mailwarden.detect.base import DetectContext, Detector, sorted_incidents
from mailwarden.model.findings import Incident

__all__ = ["DetectContext", "Detector", "build", "merge"]


def build(ctx: DetectContext) -> list[Detector]:
    """One instance of every detector with its default parameters."""
    return [
        compromised_account.CompromisedAccount(ctx),
        brute_force.BruteForce(ctx),
        password_spray.PasswordSpray(ctx),
        distributed_attack.DistributedAttack(ctx),
        unauthenticated_injection.UnauthenticatedInjection(ctx),
        web_script.WebScript(ctx),
        open_relay.OpenRelay(ctx),
    ]


def merge(incidents: list[Incident]) -> list[Incident]:
    """One incident per culprit: a sprayer is not also reported as a brute forcer.

    Password spraying is the more specific reading of the same failures, so an
    address with a spray incident loses its brute-force incident (its evidence
    is the same lines).
    """
    sprayers = {i.subject.get("ip") for i in incidents if i.kind == "password_spray"}
    kept = [i for i in incidents if not (i.kind == "brute_force" and i.subject.get("ip") in sprayers)]
    return sorted_incidents(kept)
